"""A grid of surrogate networks of different depths and weight-mean variances, trained as one model.

The trainability heat map of Stamatescu et al. (2020) is hundreds of small networks: cell c is a
`SurrogateNetwork` of depth L_c (L_c layers: input → width, L_c − 2 hidden width → width, width → classes; the
last layer's fields are the logits) initialised at (σ_m²_c, σ_b²). Depths differ, so the cells are ordered by
depth, deepest first: layer ℓ of the stack serves the cells deeper than ℓ + 1, always a leading block of the
stack, and holds parameters for those cells only (no padding, no wasted arithmetic). A cell leaves the stack
after its last hidden layer; the readouts of all cells are one batched layer. Every product is one batched
matmul over the cells of a layer (layers.py), so the stack launches each operation once per layer, not once
per cell.

Each cell's parameters are drawn exactly as its own `SurrogateNetwork` would draw them from a generator seeded
by (seed, depth, σ_m²), so `cell_network(i)` is the same network trained alone; with the loss summed over
cells and an element-wise optimizer (Adam), training the stack is training every cell on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from papers.binary_surrogates.layers import SurrogateNetwork, surrogate_layer
from papers.binary_surrogates.theory import DEFAULT_PHI, mean_function

Tensor = torch.Tensor


@dataclass(frozen=True)
class Cell:
    """One network of the grid: its depth (number of layers, readout included) and σ_m² at initialisation."""

    depth: int
    sigma_m2: float


def cell_generator(seed: int, cell: Cell) -> torch.Generator:
    """The generator a cell's initial parameters come from: a function of (seed, depth, σ_m²) alone, so a cell
    starts from the same weights whatever grid it sits in."""
    key = [seed, cell.depth, round(cell.sigma_m2 * 1_000_000)]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


class SurrogateGrid(nn.Module):
    """The cells of a (depth × σ_m²) grid as one model; forward(x: (batch, n_in)) -> logits (cells, batch, n_out),
    cells in the order of `self.cells` (deepest first)."""

    def __init__(self, cells: Sequence[Cell], n_in: int, width: int, n_out: int, *,
                 surrogate: str = "deterministic", phi: str = DEFAULT_PHI, sigma_b2: float = 0.0,
                 weight_map: str = "tanh", seed: int = 0) -> None:
        super().__init__()
        if not cells or min(c.depth for c in cells) < 2:
            raise ValueError(f"every cell needs depth >= 2 (an input and a readout layer), got {list(cells)}")
        self.cells = sorted(cells, key=lambda c: -c.depth)
        self.widths = (n_in, width, n_out)
        self.options = {"surrogate": surrogate, "phi": phi, "sigma_b2": sigma_b2, "weight_map": weight_map}
        self.phi = mean_function(phi).fn
        depths = [c.depth for c in self.cells]
        # hidden layer ℓ (0-based) serves the cells with depth − 1 > ℓ: the first `active[ℓ]` of the stack
        self.active = [sum(d - 1 > layer for d in depths) for layer in range(depths[0] - 1)]
        sm = torch.tensor([c.sigma_m2 for c in self.cells])
        layer, init = surrogate_layer(surrogate), {"sigma_b2": sigma_b2, "weight_map": weight_map}
        self.hidden = nn.ModuleList(
            layer(n_in if i == 0 else width, width, cells=n, sigma_m2=sm[:n], binary_inputs=i > 0, **init)
            for i, n in enumerate(self.active))
        self.readout = layer(width, n_out, cells=len(self.cells), sigma_m2=sm, **init)
        for i, cell in enumerate(self.cells):
            self.set_cell(i, self._single(cell, cell_generator(seed, cell)))

    def _single(self, cell: Cell, generator: torch.Generator | None = None) -> SurrogateNetwork:
        n_in, width, n_out = self.widths
        return SurrogateNetwork([n_in] + [width] * (cell.depth - 1) + [n_out], sigma_m2=cell.sigma_m2,
                                generator=generator, **self.options)

    def _cell_layers(self, i: int) -> list[nn.Module]:
        return [*self.hidden[: self.cells[i].depth - 1], self.readout]

    @torch.no_grad()
    def set_cell(self, i: int, net: SurrogateNetwork) -> None:
        """Copy a single network's parameters into cell i."""
        for stacked, layer in zip(self._cell_layers(i), net.layers, strict=True):
            stacked.theta[i].copy_(layer.theta)
            stacked.bias[i, 0].copy_(layer.bias)

    @torch.no_grad()
    def cell_network(self, i: int) -> SurrogateNetwork:
        """Cell i as a single `SurrogateNetwork` (a copy, on the grid's device and dtype)."""
        net = self._single(self.cells[i], torch.Generator()).to(self.readout.theta)  # overwritten below
        for stacked, layer in zip(self._cell_layers(i), net.layers, strict=True):
            layer.theta.copy_(stacked.theta[i])
            layer.bias.copy_(stacked.bias[i, 0])
        return net

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden[0](x)  # (active[0], batch, width)
        done = []  # φ(h) of the cells that left the stack, shallowest first
        for layer, n in zip(self.hidden[1:], self.active[1:], strict=True):
            mean = self.phi(h)
            done.append(mean[n:])
            h = layer(mean[:n])
        done.append(self.phi(h))
        return self.readout(torch.cat(done[::-1]))
