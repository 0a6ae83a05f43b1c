"""The two pieces of a stochastic rainbow network (White et al. 2024, "Learning Stochastic Rainbow Networks",
NeurIPS Sci4DL workshop; checked against glomerulus-lab/fact-conv branch sci4dl). Plain torch.

A `StochasticFactConv2d` holds a FIXED reference noise W_ref (FactConv2d's `noise`) and a generated noise W_gen
(`gen_noise`), both times the SAME learned factors F = R_c ⊗ R_s. On one input x̂ (B examples) it computes both
paths and stacks them along the batch dimension, a "pair":

    y = [conv(x̂, W_gen F) ; conv(x̂[:m], W_ref F)]          (B + m, C_out, H', W'): generated, then reference rows

m = B when the reference fraction f (`reference_fraction`) is 1, the default: the paper's K over the whole batch;
below 1, m = max(⌈f B⌉, ⌈2 C_out / (H' W')⌉) (at most B): a cheaper estimate of K from the first m examples, see
below. W_gen is redrawn (`redraw`, the training law of W0) before every training step. Elementwise maps (ReLU)
and sums act on both parts alike. An `Align` then ends the pair: with X_gen (B·H'·W' × C), X_gen^m (its first m
examples) and X_ref (m·H'·W' × C) sample matrices,

    K = X_gen^mᵀ X_ref,   Q = polar(K) = U Vᵀ  (K = U S Vᵀ),   out = X_gen Q,

Q minimising ‖X_gen^m Q − X_ref‖_F over orthogonal matrices: the generated features expressed in the reference
basis, so the next layer's factors (learned for the reference noise) apply. Only the generated path continues, for
all B examples. Gradients reach the factors through both paths via K (no detach; `common.linalg.polar_factor`, a
safe backward).

At test time the alignment of one fixed sample uses a running cross-covariance K = Σ_batches X_genᵀ X_ref over
a pass of the training set, frozen (`Align.mode`: batch | accumulate | running). The same pass measures how much
of the reference features the rotation recovers, from running sums alone (`Align.residual`):

    ‖X_gen Q − X_ref‖² / ‖X_ref‖² = (‖X_gen‖² + ‖X_ref‖² − 2 tr(Qᵀ K)) / ‖X_ref‖²,   tr(Qᵀ K) = ‖K‖_* = Σ_i s_i,

0 when a rotation maps the generated features onto the reference ones, √2 for unrelated features of equal norm.

Reference fraction f < 1 (our option, not the paper's): the reference path costs a conv over m ≈ f B examples
instead of B, so a training step costs ≈ (1 + f) plain convolutions instead of 2; K, its gradient and the signal
the factors get through the reference path come from m examples. The floor m · H' W' >= 2 C keeps K full rank with
a margin where positions are few (ResNet-18's last stage, 4 × 4 positions, 512 channels: m >= 64, where m = 32
would give a square 512-sample K, rank-deficient as soon as a channel is silent). `fix_sample` always calibrates
with f = 1.

Rank deficiency: with fewer samples m·H'·W' than channels C (or channels that never fire), K has rank < C and
its polar factor is not unique: `polar_factor` returns the SVD's completion, whose free part only acts on
directions X_gen does not span on this batch (so X_gen Q is the same for every completion), and its backward
gives those directions zero gradient. Such batches train, but carry less alignment signal.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from common.linalg import polar_factor
from common.models.factconv import FactConv2d, noise_std

AlignMode = Literal["batch", "accumulate", "running"]


MIN_SAMPLES_PER_CHANNEL = 2  # a reduced reference path still gives K at least 2 C samples (see module doc)


def reference_count(batch: int, fraction: float, shape: tuple[int, ...]) -> int:
    """m = min(B, max(⌈f B⌉, ⌈2 C / (H W)⌉)): how many of a batch's B examples take the reference path, for
    features of `shape` (C, H, W). m = B when f = 1."""
    channels, positions = shape[0], math.prod(shape[1:])
    floor = math.ceil(MIN_SAMPLES_PER_CHANNEL * channels / positions)
    return min(batch, max(math.ceil(fraction * batch - 1e-9), floor, 1))


def split_pair(pair: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[X_gen ; X_ref] (B + m rows) -> (X_gen, X_ref). B + m(B) grows strictly with B, so one B fits the rows:
    found by bisection between rows / 2 (m = B) and rows / (1 + f) (m = ⌈f B⌉)."""
    rows, shape = pair.shape[0], tuple(pair.shape[1:])
    low, high = (rows + 1) // 2, math.floor(rows / (1 + fraction)) + 1
    while low < high:  # the smallest B with B + m(B) >= rows
        mid = (low + high) // 2
        low, high = (mid + 1, high) if mid + reference_count(mid, fraction, shape) < rows else (low, mid)
    if low + reference_count(low, fraction, shape) != rows:
        raise ValueError(f"{rows} rows are no [generated ; reference] pair at reference fraction {fraction}")
    return pair[:low], pair[low:]


class Paired(nn.Module):
    """A module that makes or ends pairs, and so knows the reference fraction f (`set_reference_fraction`)."""

    reference_fraction: float = 1.0


class StochasticFactConv2d(FactConv2d, Paired):
    """A FactConv2d with a second, generated noise: forward returns the pair [generated ; reference] rows (module
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
        w_gen, w_ref = self.weight_from(torch.cat([self.gen_noise, self.noise])).chunk(2)  # (C_out, C_in, k, k)
        gen = F.conv2d(x, w_gen, stride=self.stride, padding=self.padding)
        m = reference_count(x.shape[0], self.reference_fraction, gen.shape[1:])
        return torch.cat([gen, F.conv2d(x[:m], w_ref, stride=self.stride, padding=self.padding)])


class Align(Paired):
    """[X_gen ; X_ref] (B + m, C, H, W) -> X_gen Q (B, C, H, W), Q = polar(X_gen^mᵀ X_ref) (module doc).

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
        gen, ref = split_pair(pair, self.reference_fraction)  # (B, C, H, W), (m, C, H, W)
        with torch.autocast(pair.device.type, enabled=False):  # K and its SVD never in half precision
            q = self._rotation(gen[:len(ref)], ref)
        return F.conv2d(gen, q.T[:, :, None, None].to(gen.dtype))  # X_gen Q: a 1×1 conv with weight Qᵀ

    def _rotation(self, gen: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Q of this batch (batch / accumulate) or of the running K (running), in float32 or float64."""
        if self.mode == "running":
            return polar_factor(self.running_cross)
        dtype = torch.promote_types(gen.dtype, torch.float32)
        x_gen, x_ref = (x.transpose(0, 1).flatten(1).to(dtype) for x in (gen, ref))  # (C, m·H·W)
        cross = x_gen @ x_ref.T  # K = X_genᵀ X_ref over batch × positions
        if self.mode == "accumulate":
            self.running_cross += cross.detach().double()
            self.running_norms += torch.stack([x_gen.detach().square().sum(), x_ref.detach().square().sum()])
        return polar_factor(cross)

    def residual(self) -> float:
        """‖X_gen Q − X_ref‖ / ‖X_ref‖ over the last accumulating pass, Q = polar(running K) (module doc)."""
        gen_sq, ref_sq = self.running_norms.tolist()
        nuclear = torch.linalg.svdvals(self.running_cross).sum().item()
        return max(gen_sq + ref_sq - 2 * nuclear, 0.0) ** 0.5 / max(ref_sq, 1e-300) ** 0.5

    def extra_repr(self) -> str:
        return f"{self.channels}, mode={self.mode}"


def set_reference_fraction(net: nn.Module, fraction: float) -> None:
    """f of every pairing module of `net`: the first ⌈f B⌉ examples of a batch take the reference path."""
    if not (isinstance(fraction, int | float) and 0 < fraction <= 1):
        raise UserError(f"model.reference_fraction={fraction!r} must be in (0, 1]: the share of each batch that "
                        "takes the reference path (1: the paper's alignment on the whole batch).")
    for m in net.modules():
        if isinstance(m, Paired):
            m.reference_fraction = float(fraction)


@contextmanager
def full_reference(net: nn.Module) -> Iterator[nn.Module]:
    """Within the block every example takes the reference path (calibration passes); f is restored after."""
    fractions = {m: m.reference_fraction for m in net.modules() if isinstance(m, Paired)}
    set_reference_fraction(net, 1.0)
    try:
        yield net
    finally:
        for m, fraction in fractions.items():
            m.reference_fraction = fraction


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
