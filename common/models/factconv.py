"""FactConv2d: a convolution whose weights are structured random features (White et al. 2024, "Learning and
Aligning Structured Random Feature Networks", ICLR Re-Align workshop; the authors' code glomerulus-lab/fact-conv).

The weight is a FIXED noise tensor W0 (C_out, C_in, k, k) times two LEARNED upper-triangular factors, a channel
factor R_c (C_in × C_in) and a spatial factor R_s (k² × k²), each with a positive diagonal (exp of a stored
log-diagonal) and starting at the identity. With rows flattened channel-major (index (c, s), s the k² taps),

    w_o = w0_o (R_c ⊗ R_s),     w0_o ~ N(0, σ² I),  σ² = 2 / (C_in k²)  (Kaiming normal),

so every row is Gaussian with covariance  σ² (R_cᵀ R_c) ⊗ (R_sᵀ R_s)  (mixed-product property of ⊗). Only the
factors learn: C_in(C_in+1)/2 + k²(k²+1)/2 parameters, whatever C_out. One noise law serves training and
resampling (`draw_noise`): the public code trains on a uniform buffer but resamples Gaussian noise of another
variance, which BatchNorm hides; we do not.

Channel factor variants (paper C, "low rank"): `lowrank` keeps the first r rows of R_c learnable and the rest
fixed identity rows, so R_cᵀR_c = (rank-r term) + diag(0, …, 0, 1, …, 1); `lrdiag` also learns the diagonal of
the remaining rows: rank r plus a learned diagonal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError

CHANNEL_MODES = ("full", "lowrank", "lrdiag")


def noise_std(in_channels: int, kernel_size: int) -> float:
    """σ = √(2 / fan_in), fan_in = C_in k² (Kaiming normal, the ReLU gain)."""
    return math.sqrt(2.0 / (in_channels * kernel_size**2))


def draw_noise(shape: tuple[int, ...], generator: torch.Generator | None = None) -> torch.Tensor:
    """W0 ~ N(0, σ²) iid, shape (C_out, C_in, k, k): the one noise law for training and resampling."""
    return torch.randn(shape, generator=generator) * noise_std(shape[1], shape[-1])


def v1_covariance(kernel_size: int, size: float = 2.0, freq: float = 0.1,
                  center: torch.Tensor | None = None) -> torch.Tensor:
    """The "V1-like" spatial covariance of structured random features (Pandey et al. 2022), on the k × k taps:

        C(x, y) = exp(−|x−y|² / 2f²) · exp(−|x−m|² / 2s²) · exp(−|y−m|² / 2s²) + 1e-5 I,

    m the kernel centre (or `center`, shape (..., 2) for a batch of centres), scaled to trace k² (the
    identity's). With the parameters used (s = 2, f = 0.1) the first factor is ≈ 0 off the diagonal (exp(−50) for
    neighbouring taps): C is a DIAGONAL Gaussian envelope, i.e. spatially localised white noise with no
    oscillation, not an oriented V1 receptive field. Returns (..., k², k²) in float64.
    """
    ij = torch.arange(kernel_size, dtype=torch.float64)
    grid = torch.cartesian_prod(ij, ij)  # (k², 2), row-major like a flattened kernel
    if center is None:
        center = torch.full((2,), (kernel_size - 1) / 2, dtype=torch.float64)
    envelope = torch.exp(-(grid - center.double()[..., None, :]).square().sum(-1) / (2 * size**2))  # (..., k²)
    cov = torch.exp(-torch.cdist(grid, grid).square() / (2 * freq**2)) * envelope[..., :, None] * envelope[..., None, :]
    cov = cov + 1e-5 * torch.eye(kernel_size**2, dtype=torch.float64)
    trace = cov.diagonal(dim1=-2, dim2=-1).sum(-1)
    return cov * (kernel_size**2 / trace)[..., None, None]


class TriangularFactor(nn.Module):
    """An n × n upper-triangular R with positive diagonal, R = I at init; only `rows` rows learn (the rest are
    identity rows), and with `diagonal` the whole diagonal learns. Parameters: the strictly-upper entries of the
    learned rows and the log of the learned diagonal entries."""

    def __init__(self, n: int, rows: int | None = None, diagonal: bool = False) -> None:
        super().__init__()
        rows = n if rows is None else rows
        upper = torch.triu_indices(n, n, offset=1)
        self.n = n
        self.register_buffer("upper_idx", upper[:, upper[0] < rows], persistent=False)
        self.register_buffer("diag_idx", torch.arange(n if diagonal else rows), persistent=False)
        self.upper = nn.Parameter(torch.zeros(self.upper_idx.shape[1]))
        self.log_diag = nn.Parameter(torch.zeros(len(self.diag_idx)))

    def matrix(self) -> torch.Tensor:
        diag = torch.ones(self.n, dtype=self.upper.dtype, device=self.upper.device)
        diag = diag.index_put((self.diag_idx,), self.log_diag.exp())
        r = torch.diag(diag)
        return r.index_put((self.upper_idx[0], self.upper_idx[1]), self.upper)

    @torch.no_grad()
    def set_matrix(self, r: torch.Tensor) -> None:
        """Load a full upper-triangular R with positive diagonal (all rows and the diagonal must be learnable)."""
        if len(self.diag_idx) != self.n or self.upper_idx.shape[1] != self.n * (self.n - 1) // 2:
            raise ValueError("set_matrix needs a factor whose every entry is learnable")
        self.upper.copy_(r[self.upper_idx[0], self.upper_idx[1]])
        self.log_diag.copy_(r.diagonal().log())


class FactConv2d(nn.Module):
    """conv2d(x, W0 · (R_c ⊗ R_s)): a bias-free, ungrouped Conv2d with structured random weights (module doc).

    channel: full | lowrank | lrdiag (with `rank`); spatial_init: identity | v1 (R_s = upper Cholesky factor of
    `v1_covariance`); freeze_channel / freeze_spatial keep a factor at its init. `weight` is the composite weight,
    so code that reads a conv's weight (alignment, Procrustes) works unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                 channel: str = "full", rank: int | None = None, spatial_init: str = "identity",
                 freeze_channel: bool = False, freeze_spatial: bool = False,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise UserError(f"FactConv2d needs at least one input and one output channel, got in_channels="
                            f"{in_channels}, out_channels={out_channels}: raise the model's width (scale).")
        if channel not in CHANNEL_MODES:
            raise UserError(f"Unknown FactConv channel factor '{channel}': use one of {', '.join(CHANNEL_MODES)}.")
        if channel != "full" and (rank is None or not 1 <= rank <= in_channels):
            raise UserError(f"The {channel} channel factor needs a rank in 1..{in_channels} (the layer's input "
                            f"channels), got rank={rank}.")
        if spatial_init not in ("identity", "v1"):
            raise UserError(f"Unknown FactConv spatial init '{spatial_init}': use identity or v1.")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding = stride, padding
        self.register_buffer("noise", draw_noise((out_channels, in_channels, kernel_size, kernel_size), generator))
        self.channel = TriangularFactor(in_channels, None if channel == "full" else rank, diagonal=channel == "lrdiag")
        self.spatial = TriangularFactor(kernel_size**2)
        if spatial_init == "v1":
            self.spatial.set_matrix(torch.linalg.cholesky(v1_covariance(kernel_size), upper=True).float())
        self.channel.requires_grad_(not freeze_channel)
        self.spatial.requires_grad_(not freeze_spatial)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **options: object) -> FactConv2d:
        """A FactConv2d with the geometry of `conv` (square kernel, no bias, groups = dilation = 1)."""
        k = conv.kernel_size[0]
        if (conv.bias is not None or conv.groups != 1 or conv.dilation != (1, 1) or conv.kernel_size != (k, k)
                or conv.stride[0] != conv.stride[1] or isinstance(conv.padding, str)
                or conv.padding[0] != conv.padding[1]):
            raise UserError(f"Cannot factorise {conv}: FactConv2d covers bias-free, ungrouped, undilated convs "
                            "with square kernels and equal strides / paddings.")
        return cls(conv.in_channels, conv.out_channels, k, conv.stride[0], conv.padding[0], **options)

    @property
    def weight(self) -> torch.Tensor:
        """w_o = w0_o (R_c ⊗ R_s), shape (C_out, C_in, k, k)."""
        return self.weight_from(self.noise)

    def weight_from(self, noise: torch.Tensor) -> torch.Tensor:
        """The weight this layer's factors make of another noise tensor of W0's shape (resampling)."""
        w0 = noise.flatten(2)  # (C_out, C_in, k²)
        w = torch.einsum("ocs,cd,st->odt", w0, self.channel.matrix().to(w0), self.spatial.matrix().to(w0))
        return w.reshape(noise.shape)

    def row_covariance(self) -> torch.Tensor:
        """E[w_oᵀ w_o] over the noise = σ² (R_cᵀR_c) ⊗ (R_sᵀR_s), (C_in k²) × (C_in k²)."""
        r_c, r_s = self.channel.matrix().double(), self.spatial.matrix().double()
        return noise_std(self.in_channels, self.kernel_size) ** 2 * torch.kron(r_c.T @ r_c, r_s.T @ r_s)

    @torch.no_grad()
    def resample_noise(self, generator: torch.Generator | None = None) -> None:
        """Redraw W0 from the training law, keeping the factors."""
        self.noise.copy_(draw_noise(tuple(self.noise.shape), generator).to(self.noise))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


CONV_TYPES = (nn.Conv2d, FactConv2d)  # what `weight_layers()` counts as a conv


def factorize_convs(model: nn.Module, generator: torch.Generator | None = None, **options: object) -> nn.Module:
    """Replace every nn.Conv2d of `model` (in place, in module order) by `FactConv2d.from_conv(conv, **options)`.

    A per-layer `rank` larger than a layer's input channels is clipped to them (the stem sees 1 or 3 channels).
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Conv2d):
                layer_options = dict(options)
                if layer_options.get("rank") is not None:
                    layer_options["rank"] = min(int(layer_options["rank"]), child.in_channels)
                setattr(parent, name, FactConv2d.from_conv(child, generator=generator, **layer_options))
    return model
