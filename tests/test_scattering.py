"""Tests for the learned scattering network of Guth et al. 2024 (papers/rainbow/scattering.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.layerwise import reestimate_norm_stats
from common.models.wavelets import scattering_filters
from papers.rainbow.resample import resample
from papers.rainbow.scattering import (
    EVEN_BLOCK,
    ODD_BLOCK,
    ComplexPointwiseConv,
    ComplexStandardize,
    LearnedScatteringNet,
    WaveletFilterBank,
    rho,
)

EXPECTED_PARAMS = {1 / 8: 0.20e6, 1 / 4: 0.77e6, 1 / 2: 3.07e6, 1.0: 12.25e6, 2.0: 48.9e6, 4.0: 195.5e6}


@pytest.mark.parametrize("scale", list(EXPECTED_PARAMS))
def test_parameter_counts(scale: float) -> None:
    with torch.device("meta"):
        net = LearnedScatteringNet(scale)
    n = sum(p.numel() for p in net.parameters())
    digits = 2 if EXPECTED_PARAMS[scale] < 20e6 else 1
    assert round(n / 1e6, digits) == pytest.approx(EXPECTED_PARAMS[scale] / 1e6)
    # Analytic count: sum_j N_j D_j + 8 N_8 * 10 with D_1 = 30, D_j = 10 N_{j-1}.
    widths = [int(scale * w) for w in (64, 128, 256, 512, 512, 512, 512, 512)]
    dims = [30] + [10 * w for w in widths[:-1]]
    assert n == sum(a * b for a, b in zip(widths, dims, strict=True)) + 8 * widths[-1] * 10


def test_forward_backward_small() -> None:
    torch.manual_seed(0)
    net = LearnedScatteringNet(1 / 8)
    logits = net(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 10) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    learned = net.weight_layers()
    assert len(learned) == 9 and isinstance(learned[-1], nn.Linear)
    assert all(isinstance(m, nn.Conv2d) and m.bias is None for m in learned[:-1])
    expected = {id(m.weight) for m in learned}
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == expected and len(trainable) == 9
    for m in learned:
        assert m.weight.grad is not None and m.weight.grad.abs().sum() > 0
    assert not any(b.requires_grad for b in net.buffers())
    assert not any("filters_hat" in k for k in net.state_dict())  # fixed filters rebuilt, not saved
    net.eval()
    assert torch.isfinite(net(torch.randn(2, 3, 32, 32))).all()


def test_resampling_nothing_reproduces_the_scattering_net() -> None:
    # n_sampled = 0 through the complex path (ρ, complex Std, Re/Im as alignment samples, the head BN): every
    # alignment must come out as the identity and the copy must compute the reference's logits
    torch.manual_seed(0)
    net = LearnedScatteringNet(1 / 16, num_blocks=3, in_channels=1, image_size=16).double()
    x = torch.randn(64, 1, 16, 16, dtype=torch.float64)
    batches = lambda: iter(x.split(32))  # noqa: E731
    reestimate_norm_stats(net, batches)  # the reference's statistics, estimated like the copy's
    copy = resample(net.eval(), batches, 0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(copy(x), net(x), atol=1e-8, rtol=1e-6)


def test_spatial_sizes_and_channels() -> None:
    net = LearnedScatteringNet(1 / 8)
    assert [b.out_size for b in net.blocks] == [32, 16, 16, 8, 8, 4, 4, 2]
    assert net.dims == [30, 80, 160, 320, 640, 640, 640, 640]  # D_j = 10 N_{j-1}
    x = torch.randn(2, 3, 32, 32)
    for block in net.blocks:
        z = block.filters(x)
        assert z.is_complex() and z.shape[1] == 5 * x.shape[1]
        assert rho(z).shape[1] == block.dim == 10 * x.shape[1]
        x = block(x)
        assert x.shape == (2, block.out_channels, block.out_size, block.out_size) and x.is_complex()
        # N: unit L2 norm over channels at every pixel.
        torch.testing.assert_close(x.abs().square().sum(1), torch.ones(2, block.out_size, block.out_size))


def test_smoke_variant_one_channel() -> None:
    net = LearnedScatteringNet(1 / 8, num_blocks=4, in_channels=1)
    assert net.dims == [10, 80, 160, 320] and net.out_size == 8
    assert net(torch.randn(3, 1, 32, 32)).shape == (3, 10)


@pytest.mark.parametrize("cfg", [ODD_BLOCK, EVEN_BLOCK])
def test_filters(cfg: dict) -> None:
    size = 20
    f = scattering_filters(size, cfg["sigma"], cfg["xi"])
    assert f.shape == (5, size, size)
    assert f[0].imag.abs().max() < 1e-12 and (f[0].real >= 0).all()
    assert f[0].sum().real == pytest.approx(1.0, abs=1e-12)
    for psi in f[1:]:
        assert psi.sum().abs() < 1e-10  # zero mean
        assert psi.abs().sum() == pytest.approx(1.0, abs=1e-12)  # unit L1 norm
    idx = torch.arange(size)
    neg = (-idx) % size
    # theta = -pi/4 mirrors theta = pi/4 (y -> -y); theta = -pi/2 is theta = 0 rotated by 90 degrees.
    torch.testing.assert_close(f[3], f[1][neg][:, idx])
    torch.testing.assert_close(f[4], f[2].T[neg])  # psi_{-pi/2}[y, x] = psi_0[x, -y]
    energy = f[1:].abs().square().sum((1, 2))
    torch.testing.assert_close(energy, energy.mean().expand(4), rtol=0.03, atol=0)
    # Orientation: the 0-angle wavelet's spectrum peaks on the positive horizontal frequency axis.
    spec = torch.fft.fft2(scattering_filters(64, cfg["sigma"], cfg["xi"])[2]).abs()
    ky, kx = divmod(int(spec.argmax()), 64)
    assert ky == 0 and 0 < kx < 32


def _direct_filter_bank(x: np.ndarray, filt: np.ndarray, stride: int) -> np.ndarray:
    """Reference: reflect pad by 2, direct circular convolution over the padded torus, crop, subsample."""
    b, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
    m = xp.shape[-1]
    out = np.zeros((b, c, filt.shape[0], m, m), dtype=complex)
    for k in range(filt.shape[0]):
        for m1 in range(m):
            for m2 in range(m):  # y[n] += psi[m] * x[n - m]
                out[:, :, k] += filt[k, m1, m2] * np.roll(xp, (m1, m2), axis=(-2, -1))
    out = out[..., 2 : 2 + h : stride, 2 : 2 + w : stride]
    return out.reshape(b, c * filt.shape[0], *out.shape[-2:])


@pytest.mark.parametrize("cfg", [ODD_BLOCK, EVEN_BLOCK])
def test_fft_convolution_matches_direct(cfg: dict) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 2, 6, 6, dtype=torch.complex64)
    bank = WaveletFilterBank(6, **cfg)
    filt = scattering_filters(10, cfg["sigma"], cfg["xi"]).numpy()
    expected = torch.from_numpy(_direct_filter_bank(x.numpy().astype(complex), filt, cfg["stride"]))
    got = bank(x)
    assert got.shape == (2, 10, bank.out_size, bank.out_size)
    torch.testing.assert_close(got, expected.to(torch.complex64), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bank(x.real), bank(x.real.to(torch.complex64)))


def test_complex_standardize_train_and_eval() -> None:
    torch.manual_seed(2)
    std = ComplexStandardize(3)
    z = 2.0 + 1.5j + 3.0 * torch.randn(8, 3, 5, 5, dtype=torch.complex64)
    out = std(z)
    assert out.is_complex()
    mean = out.mean(dim=(0, 2, 3))
    assert mean.abs().max() < 1e-5
    torch.testing.assert_close(out.abs().square().mean(dim=(0, 2, 3)), torch.ones(3), rtol=1e-3, atol=0)
    assert std.num_batches_tracked == 1 and std.running_mean[:, 0].abs().max() > 0.1  # EMA moved
    std.eval()
    rm = torch.view_as_complex(std.running_mean.contiguous())
    expected = (z - rm[:, None, None]) / torch.sqrt(std.running_var + std.eps)[:, None, None]
    torch.testing.assert_close(std(z), expected)


def test_complex_standardize_cumulative_population_stats() -> None:
    torch.manual_seed(3)
    std = ComplexStandardize(4, momentum=0.1)
    batches = [torch.randn(n, 4, 3, 3, dtype=torch.complex64) * (i + 1) + i for i, n in enumerate((5, 7, 4))]
    std(batches[0])
    std.reset_running_stats()
    assert std.num_batches_tracked == 0 and (std.running_var == 1).all()
    std.momentum = None
    with torch.no_grad():
        for b in batches:
            std(b)
    allz = torch.cat(batches).to(torch.complex128)
    pop_mean = allz.mean(dim=(0, 2, 3))
    pop_var = (allz - pop_mean[:, None, None]).abs().square().mean(dim=(0, 2, 3))
    torch.testing.assert_close(std.running_mean.double(), torch.view_as_real(pop_mean), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std.running_var.double(), pop_var, rtol=1e-5, atol=1e-5)
    assert std.num_batches_tracked == 3


def test_complex_pointwise_conv_and_pre_hook() -> None:
    torch.manual_seed(4)
    conv = ComplexPointwiseConv(6, 4)
    assert isinstance(conv, nn.Conv2d) and conv.weight.shape == (4, 6, 1, 1) and conv.bias is None
    z = torch.randn(3, 6, 5, 5, dtype=torch.complex64)
    seen: list[torch.Tensor] = []
    handle = conv.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    out = conv(z)
    handle.remove()
    expected = torch.complex(F.conv2d(z.real, conv.weight), F.conv2d(z.imag, conv.weight))
    torch.testing.assert_close(out, expected)
    assert len(seen) == 1 and seen[0] is z and seen[0].is_complex()
    # Explicit matrix form: out[b, o] = sum_i W[o, i] z[b, i].
    torch.testing.assert_close(out, torch.einsum("oi,bihw->bohw", conv.weight[:, :, 0, 0].to(z.dtype), z))
    with torch.no_grad():
        assert math.isclose(float(conv(z.real).sub(out.real).abs().max()), 0.0, abs_tol=1e-6)
