"""Morlet wavelets on a periodic grid, and the first-order scattering transform built from them (Mallat 2012;
Bruna & Mallat 2013). Plain torch, float64 filters; convolutions are circular via the FFT on a reflect-padded image.

Used by the learned scattering network of Guth et al. (2024, `papers/rainbow/scattering.py`) and by the
"scattering + linear" row of the random-feature table of White et al. (`papers/structured_rainbow/features.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIGMA_LOWPASS = 0.8 / math.sqrt(2)


def _periodized_grid(size: int, periods: int = 2) -> tuple[Tensor, Tensor]:
    """Row/column offsets y, x of shape (2P+1, 2P+1, size, size): u + k*size for all shifts k, so that
    summing a function of (y, x) over the first two axes periodises it on the size x size torus."""
    u = torch.arange(size, dtype=torch.float64, device="cpu")
    k = torch.arange(-periods, periods + 1, dtype=torch.float64, device="cpu") * size
    y = (k[:, None, None, None] + u[None, None, :, None]).expand(-1, k.numel(), size, size)
    x = (k[None, :, None, None] + u[None, None, None, :]).expand(k.numel(), -1, size, size)
    return y, x


def scattering_filters(
    size: int, sigma: float, xi: float, sigma_lowpass: float = SIGMA_LOWPASS, num_angles: int = 4
) -> Tensor:
    """Periodised spatial filters (1 + num_angles, size, size), complex128, centred at index (0, 0).

    phi(u) = g_{sigma_lp}(u) / sum g_{sigma_lp}, with g_s(u) = exp(-|u|^2 / (2 s^2));
    psi_theta(u) = g_sigma(u) (exp(i xi u_theta) - kappa_theta),  u_theta = x cos(theta) + y sin(theta)
    (x = column, y = row offset), theta_t = (1 - t) pi / num_angles, t = 0..num_angles-1 (pi/4, 0, -pi/4,
    -pi/2 for 4 angles); kappa_theta = sum(g e^{i xi u_theta}) / sum(g) on the torus so that sum psi = 0
    exactly, then psi is scaled to unit L1 norm.
    """
    y, x = _periodized_grid(size)
    r2 = x**2 + y**2
    lowpass = torch.exp(-r2 / (2 * sigma_lowpass**2)).sum((0, 1))
    filters = [(lowpass / lowpass.sum()).to(torch.complex128)]
    gauss = torch.exp(-r2 / (2 * sigma**2))
    gauss_p = gauss.sum((0, 1))
    for t in range(num_angles):
        theta = (1 - t) * math.pi / num_angles
        gabor = (gauss * torch.exp(1j * xi * (x * math.cos(theta) + y * math.sin(theta)))).sum((0, 1))
        psi = gabor - (gabor.sum() / gauss_p.sum()) * gauss_p
        filters.append(psi / psi.abs().sum())
    return torch.stack(filters)


def reflect_pad(x: Tensor, pad: int) -> Tensor:
    """Reflect-pad the two spatial dims (F.pad has no complex reflect mode, so pad Re and Im)."""
    if x.is_complex():
        return torch.complex(reflect_pad(x.real, pad), reflect_pad(x.imag, pad))
    return F.pad(x, (pad,) * 4, mode="reflect")


def circular_convolve(x_hat: Tensor, filters_hat: Tensor) -> Tensor:
    """x ⋆ ψ_k for every filter k, circular, from spectra: (B, C, S, S) images, (K, S, S) filters -> (B, C, K, S, S)."""
    return torch.fft.ifft2(x_hat.unsqueeze(2) * filters_hat)


class FirstOrderScattering(nn.Module):
    """Scattering coefficients of order 0 and 1 at scales j < J and L angles (fixed, nothing learns):

        S0 x = (x ⋆ φ_J) ↓ 2^J,     S1 x (j, θ) = (|x ⋆ ψ_{j,θ}| ⋆ φ_J) ↓ 2^J,

    ψ_{j,θ} the Morlet of `scattering_filters` with σ = 0.8·2^j and ξ = 3π/4 / 2^j (kymatio's defaults), φ_J the
    Gaussian low-pass of σ = 0.8·2^J (unit sum). (B, C, H, W) -> (B, C (1 + J L), ⌈H / 2^J⌉, ⌈W / 2^J⌉), channel
    c (1 + J L) + k: k = 0 is S0, k = 1 + j L + l is S1 at (j, θ_l). Each convolution is circular on the image
    reflect-padded by 2^J on every side, then cropped. Our Morlets have round envelopes (kymatio's are elongated,
    slant 4 / L); the angles are those of `scattering_filters`.
    """

    def __init__(self, in_size: int, scales: int = 2, angles: int = 8) -> None:
        super().__init__()
        self.scales, self.angles, self.pad = scales, angles, 2**scales
        size = in_size + 2 * self.pad
        lowpass_sigma = 0.8 * 2**scales
        banks = [scattering_filters(size, 0.8 * 2**j, 3 * math.pi / 4 / 2**j, lowpass_sigma, angles)
                 for j in range(scales)]
        filters = torch.cat([banks[0][:1], *(bank[1:] for bank in banks)])  # φ_J, then ψ_{j,θ} (1 + J L, S, S)
        # deterministic functions of the arguments: kept out of the state dict
        self.register_buffer("filters_hat", torch.fft.fft2(filters).to(torch.complex64), persistent=False)

    @property
    def channels_per_input(self) -> int:
        return 1 + self.scales * self.angles

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        p, step = self.pad, 2**self.scales
        x_hat = torch.fft.fft2(reflect_pad(x.float(), p))  # (B, C, S, S)
        lowpass_hat = self.filters_hat[:1]
        order0 = circular_convolve(x_hat, lowpass_hat).real  # (B, C, 1, S, S)
        modulus = circular_convolve(x_hat, self.filters_hat[1:]).abs()  # |x ⋆ ψ_{j,θ}|: (B, C, J L, S, S)
        order1 = torch.fft.ifft2(torch.fft.fft2(modulus) * lowpass_hat).real
        out = torch.cat([order0, order1], 2)[..., p : p + h : step, p : p + w : step]
        return out.reshape(b, c * self.channels_per_input, *out.shape[-2:]).to(x.dtype)
