"""The two pieces of a stochastic rainbow network (White et al. 2024, "Learning Stochastic Rainbow Networks",
NeurIPS Sci4DL workshop; checked against glomerulus-lab/fact-conv branch sci4dl). Plain torch.

A `StochasticFactConv2d` holds a FIXED reference noise W_ref (FactConv2d's `noise`) and a generated noise W_gen
(`gen_noise`), both times the SAME learned factors F = R_c ⊗ R_s. On one input x̂ it computes both paths at once,

    y = [conv(x̂, W_gen F) | conv(x̂, W_ref F)]          (B, 2 C_out, H', W'): generated, then reference channels

and W_gen is redrawn (`redraw`, the training law of W0) before every training step. Elementwise maps (ReLU) and
sums act on both halves alike. An `Align` then ends the pair: with X_gen, X_ref the two halves as (B·H'·W') × C
sample matrices,

    K = X_genᵀ X_ref,   Q = polar(K) = U Vᵀ  (K = U S Vᵀ),   out = X_gen Q,

Q minimising ‖X_gen Q − X_ref‖_F over orthogonal matrices: the generated features expressed in the reference
basis, so the next layer's factors (learned for the reference noise) apply. Only the generated path continues.
Gradients reach the factors through both paths via K (no detach; `common.linalg.polar_factor`, a safe backward).

At test time the alignment of one fixed sample uses a running cross-covariance K = Σ_batches X_genᵀ X_ref over
a pass of the training set, frozen (`Align.mode`: batch | accumulate | running). The same pass measures how much
of the reference features the rotation recovers, from running sums alone (`Align.residual`):

    ‖X_gen Q − X_ref‖² / ‖X_ref‖² = (‖X_gen‖² + ‖X_ref‖² − 2 tr(Qᵀ K)) / ‖X_ref‖²,   tr(Qᵀ K) = ‖K‖_* = Σ_i s_i,

0 when a rotation maps the generated features onto the reference ones, √2 for unrelated features of equal norm.

Rank deficiency: with fewer samples B·H'·W' than channels C (or channels that never fire), K has rank < C and
its polar factor is not unique: `polar_factor` returns the SVD's completion, whose free part only acts on
directions X_gen does not span on this batch (so X_gen Q is the same for every completion), and its backward
gives those directions zero gradient. Such batches train, but carry less alignment signal.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.linalg import polar_factor
from common.models.factconv import FactConv2d, noise_std

AlignMode = Literal["batch", "accumulate", "running"]


class StochasticFactConv2d(FactConv2d):
    """A FactConv2d with a second, generated noise: forward returns [generated | reference] channels (module
    doc). `FactConv2d.forward` semantics (the reference path alone) are not used here."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("gen_noise", torch.empty_like(self.noise))
        self.redraw()

    @torch.no_grad()
    def redraw(self, generator: torch.Generator | None = None) -> None:
        """W_gen ← fresh N(0, σ²) noise, the law of W0 (`draw_noise`), drawn on W_gen's device."""
        self.gen_noise.normal_(0.0, noise_std(self.in_channels, self.kernel_size), generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.weight_from(torch.cat([self.gen_noise, self.noise]))  # (2 C_out, C_in, k, k)
        return F.conv2d(x, both, stride=self.stride, padding=self.padding)


class Align(nn.Module):
    """[X_gen | X_ref] (B, 2C, H, W) -> X_gen Q (B, C, H, W), Q = polar(X_genᵀ X_ref) (module doc).

    mode: `batch` (K of this batch, training), `accumulate` (K of this batch, also summed into
    `running_cross`, and the squared norms of both halves into `running_norms`), `running` (Q of the frozen
    `running_cross`: one fixed sample at test).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.mode: AlignMode = "batch"
        self.register_buffer("running_cross", torch.zeros(channels, channels, dtype=torch.float64))
        # [‖X_gen‖², ‖X_ref‖²] of the accumulating pass, for `residual`; not in checkpoints
        self.register_buffer("running_norms", torch.zeros(2, dtype=torch.float64), persistent=False)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        gen, ref = pair.chunk(2, dim=1)  # (B, C, H, W) each
        if self.mode == "running":
            q = polar_factor(self.running_cross)
        else:
            dtype = torch.promote_types(pair.dtype, torch.float32)  # K and its SVD never in half precision
            x_gen, x_ref = (x.transpose(0, 1).flatten(1).to(dtype) for x in (gen, ref))  # (C, B·H·W)
            cross = x_gen @ x_ref.T  # K = X_genᵀ X_ref over batch × positions
            if self.mode == "accumulate":
                self.running_cross += cross.detach().double()
                self.running_norms += torch.stack([x_gen.detach().square().sum(), x_ref.detach().square().sum()])
            q = polar_factor(cross)
        return F.conv2d(gen, q.T[:, :, None, None].to(gen.dtype))  # X_gen Q: a 1×1 conv with weight Qᵀ

    def residual(self) -> float:
        """‖X_gen Q − X_ref‖ / ‖X_ref‖ over the last accumulating pass, Q = polar(running K) (module doc)."""
        gen_sq, ref_sq = self.running_norms.tolist()
        nuclear = torch.linalg.svdvals(self.running_cross).sum().item()
        return max(gen_sq + ref_sq - 2 * nuclear, 0.0) ** 0.5 / max(ref_sq, 1e-300) ** 0.5

    def extra_repr(self) -> str:
        return f"{self.channels}, mode={self.mode}"


def set_align_mode(net: nn.Module, mode: AlignMode) -> None:
    """Every Align of `net` to `mode`; `accumulate` first zeroes the running cross-covariances."""
    for m in net.modules():
        if isinstance(m, Align):
            m.mode = mode
            if mode == "accumulate":
                m.running_cross.zero_()
                m.running_norms.zero_()


@torch.no_grad()
def redraw_all(net: nn.Module, generator: torch.Generator | None = None) -> None:
    """A fresh W_gen in every StochasticFactConv2d of `net`, in module order."""
    for m in net.modules():
        if isinstance(m, StochasticFactConv2d):
            m.redraw(generator)
