"""G one-hidden-layer networks with stacked parameters, trained as one model (Alleman et al. 2024).

Network g sees the inputs of its knob value κ(g) and computes

    h_g = φ_g(x W_g + b1_g),      ŷ_g = sigmoid(h_g J_g + b2_g),

W, b1 ~ N(0, 1/D) (trained), J, b2 ~ N(0, 1/width) (FIXED: buffers, never trained). The stack is ordered
(nonlinearity, knob, seed); the initial weights depend on the seed only, so a Tanh net, its ReLU pair and the
same seed at every knob value start from the same weights. One forward is two batched matmuls (baddbmm).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "hardtanh": nn.functional.hardtanh,  # symmetric saturation, piecewise linear
    "capped_relu": lambda x: x.clamp(0, 1),  # ReLU saturating at 1: bounded, but saturating at 0 only from one side
    "shifted_relu": lambda x: x.clamp_min(-1),  # relu(x + 1) − 1: unbounded above, like ReLU, centred nearer 0
}


class StackedNets(nn.Module):
    def __init__(self, activations: list[str], num_knobs: int, seeds: list[int], dim: int, width: int,
                 outputs: int) -> None:
        super().__init__()
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"unknown activation(s) {unknown}; valid: {', '.join(ACTIVATIONS)}")
        self.activations, self.num_knobs, self.seeds = list(activations), num_knobs, list(seeds)
        per_seed = [self._init(s, dim, width, outputs) for s in seeds]
        copies = len(activations) * num_knobs

        def stack(i: int) -> Tensor:  # (A, K, S, ...) flattened to (G, ...)
            return torch.stack([p[i] for p in per_seed]).repeat(copies, *([1] * per_seed[0][i].dim()))

        self.w, self.b1 = nn.Parameter(stack(0)), nn.Parameter(stack(1))
        self.register_buffer("j", stack(2))
        self.register_buffer("b2", stack(3))
        knob = torch.arange(num_knobs).repeat_interleave(len(seeds)).repeat(len(activations))
        self.register_buffer("knob_of", knob)

    @staticmethod
    def _init(seed: int, dim: int, width: int, outputs: int) -> tuple[Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(dim, width, generator=g) / math.sqrt(dim), torch.randn(width, generator=g) / math.sqrt(dim),
                torch.randn(width, outputs, generator=g) / math.sqrt(width),
                torch.randn(outputs, generator=g) / math.sqrt(width))

    @property
    def size(self) -> int:
        return self.w.shape[0]

    def index(self, activation: str, knob: int, seed_index: int) -> int:
        """The stack position of one network."""
        return (self.activations.index(activation) * self.num_knobs + knob) * len(self.seeds) + seed_index

    def hidden(self, x: Tensor) -> Tensor:
        """x (K, B, D) per knob value -> h (G, B, width) after each network's own nonlinearity."""
        pre = torch.baddbmm(self.b1[:, None, :], x[self.knob_of], self.w)
        groups = pre.chunk(len(self.activations))
        return torch.cat([ACTIVATIONS[a](p) for a, p in zip(self.activations, groups, strict=True)])

    def forward(self, x: Tensor) -> Tensor:
        """Logits (G, B, outputs)."""
        return torch.baddbmm(self.b2[:, None, :], self.hidden(x), self.j)
