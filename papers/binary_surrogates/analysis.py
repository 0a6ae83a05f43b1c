"""What a trained grid of surrogates is scored on (Stamatescu et al. 2020, experiments): per-cell accuracies,
the trainable region against the depth scale, and the binary networks taken from each surrogate. Plain torch.

Trainability (decided before any measurement): a cell "trains" when its accuracy on the whole training split
after the fixed budget is at least TRAINED = 0.5, halfway between chance (0.1) and the ≈ 0.9 a shallow surrogate
reaches. The theory predicts training where L ≤ 6 ξ_c (ξ_c = theory.depth_scale at the cell's (σ_m², σ_b²)):
the metrics are the fraction of cells that train on either side of that line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from common.classifier import accuracy
from papers.binary_surrogates.grid import Cell, SurrogateGrid
from papers.binary_surrogates.layers import DeterministicBinaryNetwork, StochasticBinaryNetwork
from papers.binary_surrogates.theory import depth_scale

Tensor = torch.Tensor
TRAINED = 0.5
DEPTH_SCALES = 6.0  # the paper's trainable depth, in units of ξ_c


@torch.no_grad()
def grid_accuracy(grid: SurrogateGrid, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """Accuracy of every cell on (x, y): (cells,)."""
    correct = sum((grid(xb).argmax(-1) == yb).sum(-1) for xb, yb in zip(x.split(batch_size), y.split(batch_size),
                                                                       strict=True))
    return correct.double() / len(y)


@torch.no_grad()
def network_accuracy(net: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int) -> float:
    """Accuracy of one network (logits or class probabilities) on (x, y), in batches."""
    correct = sum(accuracy(net(xb), yb).item() * len(yb) for xb, yb in zip(x.split(batch_size), y.split(batch_size),
                                                                            strict=True))
    return correct / len(y)


def binary_accuracies(grid: SurrogateGrid, x: Tensor, y: Tensor, samples: Sequence[int], seed: int,
                      batch_size: int) -> dict[str, Tensor]:
    """Per cell (cells,): the stochastic binary networks averaged over K sampled weight sets for K in `samples`
    (`stochastic{K}`), and the deterministic binary network W = sign(M) (`deterministic`), layers.py."""
    out: dict[str, list[float]] = {f"stochastic{k}": [] for k in samples} | {"deterministic": []}
    for i in range(len(grid.cells)):
        net = grid.cell_network(i)
        for k in samples:
            out[f"stochastic{k}"].append(network_accuracy(StochasticBinaryNetwork(net, k, seed), x, y, batch_size))
        out["deterministic"].append(network_accuracy(DeterministicBinaryNetwork(net), x, y, batch_size))
    return {name: torch.tensor(values, dtype=torch.float64) for name, values in out.items()}


def trainability(cells: Sequence[Cell], train_acc: Tensor, sigma_b2: float, surrogate: str,
                 phi: str) -> dict[str, float]:
    """Fractions of cells that train within (L ≤ 6ξ_c) and beyond the predicted depth (absent for a side without
    cells), how many cells lie on each side, and the σ_m² whose cells train best on average over depths."""
    depth = torch.tensor([c.depth for c in cells], dtype=torch.float64)
    sm = torch.tensor([c.sigma_m2 for c in cells], dtype=torch.float64)
    within = depth <= DEPTH_SCALES * depth_scale(sm, sigma_b2, surrogate, phi=phi)
    trained = (train_acc >= TRAINED).double()
    columns = sm.unique()
    column_mean = torch.stack([train_acc[sm == s].mean() for s in columns])
    metrics = {"cells_within_6xi": within.double().sum().item(), "cells_beyond_6xi": (~within).double().sum().item(),
               "best_sigma_m2": columns[column_mean.argmax()].item(), "train_acc_mean": train_acc.mean().item()}
    for side, cells_on_side in (("within", within), ("beyond", ~within)):
        if cells_on_side.any():
            metrics[f"trained_{side}_6xi"] = trained[cells_on_side].mean().item()
    return metrics


def binary_gaps(depths: Sequence[int], surrogate_acc: Tensor, binary: dict[str, Tensor],
                samples: Sequence[int]) -> dict[str, float]:
    """Surrogate minus binary test accuracy: the largest gap over depths of every binary network, the gain of the
    most samples over the fewest (mean over depths), and how much the deterministic binary network's gap grows
    from the shallowest to the deepest cell."""
    gaps = {name: surrogate_acc - acc for name, acc in binary.items()}
    metrics = {f"gap_{name}_max": gap.max().item() for name, gap in gaps.items()}
    deterministic = gaps["deterministic"][torch.tensor(depths).argsort()]
    metrics["gap_deterministic_growth"] = (deterministic[-1] - deterministic[0]).item()
    if len(samples) > 1:
        fewest, most = binary[f"stochastic{min(samples)}"], binary[f"stochastic{max(samples)}"]
        metrics["gain_most_over_fewest_samples"] = (most - fewest).mean().item()
    return metrics
