"""FactConv2d against its closed forms: Kronecker row covariance (Monte Carlo), parameter count, identity init."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.models.factconv import FactConv2d, factorize_convs, noise_std, v1_covariance


def _randomise(layer: FactConv2d, seed: int) -> None:
    """Move every learnable factor entry away from the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def test_row_covariance_is_the_kronecker_product_monte_carlo() -> None:
    layer = FactConv2d(3, 2000, 3)
    _randomise(layer, 0)
    cov = layer.row_covariance()
    gen = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(10):  # 20,000 rows from fresh noise with the same factors
        layer.resample_noise(gen)
        rows.append(layer.weight.detach().flatten(1).double())
    w = torch.cat(rows)
    emp = w.T @ w / len(w)
    # Gaussian rows: Var(emp_ij) = (C_ij² + C_ii C_jj) / n; 5 standard errors per entry
    se = ((cov.square() + torch.outer(cov.diagonal(), cov.diagonal())) / len(w)).sqrt()
    assert ((emp - cov).abs() / se).max() < 5
    r_c, r_s = layer.channel.matrix().double(), layer.spatial.matrix().double()
    assert torch.allclose(r_c, r_c.triu()) and (r_c.diagonal() > 0).all() and (r_s.diagonal() > 0).all()


def test_identity_init_is_a_plain_conv_with_the_noise_as_weight() -> None:
    layer = FactConv2d(4, 6, 3, stride=2, padding=1)
    torch.testing.assert_close(layer.channel.matrix(), torch.eye(4))
    x = torch.randn(2, 4, 9, 9)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.noise, stride=2, padding=1))
    # the noise law: N(0, 2 / fan_in), so the row covariance at init is σ² I
    torch.testing.assert_close(layer.row_covariance(), noise_std(4, 3) ** 2 * torch.eye(36, dtype=torch.float64))


@pytest.mark.parametrize("c_out", [1, 8, 64])
def test_parameter_count_is_independent_of_output_channels(c_out: int) -> None:
    layer = FactConv2d(5, c_out, 3)
    assert sum(p.numel() for p in layer.parameters()) == 5 * 6 // 2 + 9 * 10 // 2
    assert "noise" in dict(layer.named_buffers())


def test_gradients_reach_only_the_factors() -> None:
    layer = FactConv2d(3, 4, 3, padding=1)
    _randomise(layer, 2)
    layer(torch.randn(2, 3, 6, 6)).square().sum().backward()
    assert {n for n, p in layer.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0} == {
        "channel.upper", "channel.log_diag", "spatial.upper", "spatial.log_diag"}
    assert not layer.noise.requires_grad


def test_freezing_a_factor_keeps_it_out_of_training() -> None:
    layer = FactConv2d(3, 4, 3, freeze_spatial=True)
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"channel.upper", "channel.log_diag"}
    layer = FactConv2d(3, 4, 3, freeze_channel=True)
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"spatial.upper", "spatial.log_diag"}


@pytest.mark.parametrize("mode", ["lowrank", "lrdiag"])
def test_low_rank_channel_factor(mode: str) -> None:
    c, r = 6, 2
    layer = FactConv2d(c, 4, 3, channel=mode, rank=r)
    _randomise(layer, 3)
    r_c = layer.channel.matrix()
    # rows past r: identity rows (lowrank) or diagonal rows with a learned diagonal (lrdiag)
    tail = r_c[r:]
    assert torch.count_nonzero(tail[:, :r]) == 0
    torch.testing.assert_close(tail[:, r:], torch.diag(tail[:, r:].diagonal()))
    if mode == "lowrank":
        torch.testing.assert_close(tail[:, r:], torch.eye(c - r))
    else:
        assert not torch.allclose(tail[:, r:].diagonal(), torch.ones(c - r))
    # R_cᵀR_c minus its part from the fixed/diagonal rows has rank r
    gram = r_c.T @ r_c - tail.T @ tail
    assert torch.linalg.matrix_rank(gram).item() == r
    n_upper = sum(c - 1 - i for i in range(r))
    assert layer.channel.upper.numel() == n_upper
    assert layer.channel.log_diag.numel() == (r if mode == "lowrank" else c)


def test_v1_init_is_a_diagonal_gaussian_envelope() -> None:
    cov = v1_covariance(3)
    assert cov.trace().item() == pytest.approx(9)
    off = cov - torch.diag(cov.diagonal())
    assert off.abs().max() < 1e-12  # f = 0.1: no correlation between taps
    assert cov[4, 4] == cov.diagonal().max() and cov[0, 0] == cov.diagonal().min()  # peaked at the centre
    layer = FactConv2d(2, 3, 3, spatial_init="v1")
    r_s = layer.spatial.matrix().double()
    torch.testing.assert_close(r_s.T @ r_s, cov, atol=1e-5, rtol=1e-5)


def test_factorize_convs_swaps_every_conv() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False)))
    factorize_convs(net, channel="lowrank", rank=2)
    convs = [m for m in net.modules() if isinstance(m, FactConv2d)]
    assert len(convs) == 2 and not any(isinstance(m, nn.Conv2d) for m in net.modules())
    assert convs[1].stride == 2 and convs[1].kernel_size == 1
    assert convs[0].channel.upper.numel() == 0  # rank clipped to the stem's single input channel
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 8, 4, 4)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_channels": 0, "out_channels": 4}, "at least one input and one output channel"),
    ({"in_channels": 4, "out_channels": 0}, "at least one input and one output channel"),
    ({"channel": "lowrank", "rank": 5}, r"needs a rank in 1..4"),
    ({"channel": "lrdiag"}, r"needs a rank in 1..4"),
    ({"channel": "diag"}, "Unknown FactConv channel factor"),
    ({"spatial_init": "gabor"}, "Unknown FactConv spatial init"),
])
def test_bad_input_is_a_clear_error(kwargs: dict, message: str) -> None:
    args = {"in_channels": 4, "out_channels": 4, "kernel_size": 3} | kwargs
    with pytest.raises(UserError, match=message):
        FactConv2d(**args)
    with pytest.raises(UserError, match="Cannot factorise"):
        FactConv2d.from_conv(nn.Conv2d(4, 4, 3, bias=True))
