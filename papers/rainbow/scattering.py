"""Learned scattering network ("skip" variant) of Guth, Ménard, Rochette & Mallat (2024),
"A Rainbow in Deep Network Black Boxes", JMLR (arXiv 2305.18512), section on learned scattering
networks (architecture inherited from Guth, Zarka & Mallat, "Phase collapse in neural networks").

Block j (j = 1..J, J = 8 at paper scale) maps complex activations x_{j-1} with N_{j-1} channels to
x_j with N_j channels::

    x_j = N( P_j Std( rho( Fw x_{j-1} ) ) ),     rho(z) = [z, |z|]

* ``Fw``: fixed depthwise wavelet filtering, 1 Gaussian low-pass + 4 oriented Morlet wavelets per
  input channel (5 N_{j-1} complex channels), subsampling by 2 on even blocks.
* ``rho``: the complex coefficients are kept beside their modulus (the "skip" connection),
  giving D_j = 10 N_{j-1} complex channels (D_1 = 30 for RGB).
* ``Std``: complex batch standardisation without affine parameters (:class:`ComplexStandardize`).
* ``P_j``: learned real 1x1 convolution N_j x D_j applied to Re and Im alike
  (:class:`ComplexPointwiseConv`), N_j = int(s * [64, 128, 256, 512, 512, 512, 512, 512]_j).
* ``N``: division of every pixel by its L2 norm across channels.

Head: (Re, Im) of each channel as 2 N_J real channels -> BatchNorm2d(affine=False) -> flatten (2x2) ->
Linear(8 N_J, 10), flattened channel-major so that the classifier's input has N_J channel groups.
Only the P_j and the final Linear learn; there are no biases. Parameter counts for
s = 1/8, 1/4, 1/2, 1, 2, 4: 0.20M, 0.77M, 3.07M, 12.25M, 48.9M, 195.5M.

Training recipe (paper, CIFAR-10; implemented elsewhere): SGD, momentum 0.9, weight decay 1e-4,
lr = 0.01 * 0.1 ** (epoch // 50), 150 epochs, batch size 128; reference test accuracy 91.6 % at s = 1.

Filter normalisation (our choice, the paper does not fix it and Std makes it irrelevant up to eps):
the low-pass sums to 1 and every Morlet has unit L1 norm, so no filter amplifies the sup norm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from common.models.layers import FlattenLinear
from common.models.wavelets import circular_convolve, reflect_pad, scattering_filters

PAPER_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512, 512)
ODD_BLOCK = {"sigma": 0.8, "xi": 3 * math.pi / 4, "stride": 1}  # blocks 1, 3, 5, 7
EVEN_BLOCK = {"sigma": 0.8 * math.sqrt(1.5), "xi": math.pi / math.sqrt(2), "stride": 2}  # 2, 4, 6, 8
PAD = 2  # reflect padding (pixels) before the periodic FFT convolution


class WaveletFilterBank(nn.Module):
    """Fw: fixed depthwise filtering by 1 low-pass + 4 Morlets for inputs of spatial size ``in_size``.

    (B, C, H, W) real or complex -> (B, 5C, H', W') complex, output channel c*5 + k = filter k applied to
    input channel c. Computation: reflect-pad by 2, circular convolution with the filter periodised on
    the padded (H+4)x(W+4) torus via FFT, crop back to HxW, subsample by ``stride``.
    """

    def __init__(self, in_size: int, sigma: float, xi: float, stride: int = 1) -> None:
        super().__init__()
        self.in_size, self.stride = in_size, stride
        self.out_size = (in_size + stride - 1) // stride
        spatial = scattering_filters(in_size + 2 * PAD, sigma, xi)
        # Buffers are deterministic functions of the config: keep them out of the state dict.
        self.register_buffer("filters_hat", torch.fft.fft2(spatial).to(torch.complex64), persistent=False)

    @property
    def num_filters(self) -> int:
        return self.filters_hat.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = circular_convolve(torch.fft.fft2(reflect_pad(x, PAD)), self.filters_hat)  # (B, C, 5, H+4, W+4)
        y = y[..., PAD : PAD + h : self.stride, PAD : PAD + w : self.stride]
        return y.reshape(b, c * self.num_filters, *y.shape[-2:])


def rho(z: Tensor) -> Tensor:
    """rho(z) = [z, |z|] along channels; the modulus is a complex tensor with zero imaginary part."""
    return torch.cat([z, z.abs().to(z.dtype)], dim=1)


def pixel_normalize(z: Tensor, eps: float = 1e-12) -> Tensor:
    """N: z / sqrt(sum_c |z_c|^2 + eps) at every pixel (no statistics)."""
    energy = torch.view_as_real(z).square().sum(-1).sum(1, keepdim=True)  # avoids |z| = sqrt at 0
    return z * torch.rsqrt(energy + eps)


class ComplexStandardize(nn.Module):
    """Std: per-channel batch standardisation of complex maps, no affine parameters.

    Train: (x - m) / sqrt(v + eps) with m = E[x] (complex) and v = E|x - m|^2 over (batch, H, W) and
    updates of ``running_mean`` ((C, 2) = Re, Im) and ``running_var`` ((C,)); eval uses the running
    stats. As in BatchNorm, ``momentum`` is the EMA factor; with ``momentum=None`` the running stats
    are the exact pooled statistics of every element seen since :meth:`reset_running_stats` (pooled
    mean and biased variance by Chan's parallel update; equal to the population statistics of the
    concatenated batches).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_channels, self.eps, self.momentum = num_channels, eps, momentum
        self.register_buffer("running_mean", torch.zeros(num_channels, 2))
        self.register_buffer("running_var", torch.ones(num_channels))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.register_buffer("num_samples_tracked", torch.tensor(0, dtype=torch.long))

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()
        self.num_samples_tracked.zero_()

    @torch.no_grad()
    def _update(self, mean: Tensor, var: Tensor, count: int) -> None:
        self.num_batches_tracked += 1
        if self.momentum is None:  # exact cumulative pooling, weighted by element counts
            n = self.num_samples_tracked.to(var.dtype)  # tensor, so no host sync on GPU
            delta = mean - self.running_mean
            frac = count / (n + count)
            pooled = self.running_var * n + var * count + delta.square().sum(-1) * n * frac
            self.running_mean += delta * frac
            self.running_var.copy_(pooled / (n + count))
            self.num_samples_tracked += count
        else:
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)

    def forward(self, z: Tensor) -> Tensor:
        zr = torch.view_as_real(z)  # (B, C, H, W, 2)
        if self.training:
            mean = zr.mean(dim=(0, 2, 3))  # (C, 2)
            var = (zr - mean[:, None, None]).square().sum(-1).mean(dim=(0, 2, 3))
            self._update(mean.detach(), var.detach(), zr.numel() // (2 * self.num_channels))
        else:
            mean, var = self.running_mean, self.running_var
        out = (zr - mean[:, None, None]) * torch.rsqrt(var + self.eps)[:, None, None, None]
        return torch.view_as_complex(out.contiguous())


class ComplexPointwiseConv(nn.Conv2d):
    """P_j: real 1x1 convolution (no bias) applied to Re and Im with the same weight.

    A plain ``nn.Conv2d`` with ``.weight`` of shape (out, in, 1, 1); forward accepts a complex tensor and
    returns conv(Re z) + i conv(Im z), computed in one conv call by folding Re/Im into the batch.
    Forward pre-hooks see the complex input ``z``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=False)

    def forward(self, z: Tensor) -> Tensor:
        if not z.is_complex():
            return super().forward(z)
        b = z.shape[0]
        zr = torch.view_as_real(z).permute(4, 0, 1, 2, 3).reshape(2 * b, *z.shape[1:])
        y = super().forward(zr).to(zr.dtype)  # back to float32 under autocast: there is no bfloat16 complex type
        return torch.complex(y[:b], y[b:])


class ScatteringBlock(nn.Module):
    """One block x -> N(P Std(rho(Fw x))): ``in_channels`` N_{j-1} -> ``dim`` D_j = 10 N_{j-1} ->
    ``out_channels`` N_j; spatial size ``in_size`` -> ``out_size``."""

    def __init__(self, in_channels: int, out_channels: int, in_size: int, even: bool) -> None:
        super().__init__()
        self.filters = WaveletFilterBank(in_size, **(EVEN_BLOCK if even else ODD_BLOCK))
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = in_size, self.filters.out_size
        self.dim = 2 * self.filters.num_filters * in_channels
        self.std = ComplexStandardize(self.dim)
        self.proj = ComplexPointwiseConv(self.dim, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_normalize(self.proj(self.std(rho(self.filters(x)))))


class LearnedScatteringNet(nn.Module):
    """Learned scattering network ("skip" variant), J blocks + linear classifier.

    Block j (1-indexed) is odd/even as in the paper (even blocks subsample by 2), with
    N_j = int(width_scale * widths[j-1]). Input (B, in_channels, image_size, image_size) real;
    output logits (B, num_classes).
    """

    def __init__(
        self,
        width_scale: float = 1.0,
        num_blocks: int = 8,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        widths: Sequence[int] = PAPER_WIDTHS,
    ) -> None:
        super().__init__()
        if num_blocks > len(widths):
            raise ValueError(f"num_blocks={num_blocks} exceeds len(widths)={len(widths)}")
        self.widths = [int(width_scale * w) for w in widths[:num_blocks]]
        blocks, c, size = [], in_channels, image_size
        for j, n in enumerate(self.widths, start=1):
            blocks.append(ScatteringBlock(c, n, size, even=j % 2 == 0))
            c, size = n, blocks[-1].out_size
        self.blocks = nn.ModuleList(blocks)
        self.out_size = size
        self.head_norm = nn.BatchNorm2d(2 * c, affine=False)
        # reads (B, N_J, 2·size²): N_J channels at its input, so alignments act on channels there too
        self.classifier = FlattenLinear(2 * c * size * size, num_classes, bias=False)

    @property
    def dims(self) -> list[int]:
        """D_j, the complex channel counts entering each P_j."""
        return [b.dim for b in self.blocks]

    def weight_layers(self) -> list[nn.Module]:
        """The learned layers in forward order: [P_1, ..., P_J, classifier]."""
        return [b.proj for b in self.blocks] + [self.classifier]

    def features(self, x: Tensor) -> Tensor:
        """Complex output x_J of the last block, (B, N_J, out_size, out_size)."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        z = self.features(x)
        b, c, h, w = z.shape
        # channel-major [Re_c, Im_c] pairs: 2N real channels for the norm, then N channel groups
        pairs = torch.view_as_real(z).permute(0, 1, 4, 2, 3).reshape(b, 2 * c, h, w)
        return self.classifier(self.head_norm(pairs).reshape(b, c, 2 * h * w))
