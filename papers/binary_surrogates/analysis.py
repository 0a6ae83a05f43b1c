"""What a trained grid of surrogates is scored on (Stamatescu et al. 2020, experiments): per-example correctness of
every cell, the trainable region against the depth scale, and the binary networks taken from each surrogate.
Plain torch.

Trainability (decided before any measurement): a cell "trains" when its accuracy on the whole training split
after the fixed budget is at least TRAINED = 0.5, halfway between chance (0.1) and the ≈ 0.9 a shallow surrogate
reaches. The theory predicts training where L ≤ 6 ξ_c (ξ_c = theory.depth_scale at the cell's (σ_m², σ_b²)):
the metrics count the cells that train on either side of that line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from papers.binary_surrogates.grid import Cell, SurrogateGrid
from papers.binary_surrogates.layers import DeterministicBinaryNetwork, StochasticBinaryNetwork
from papers.binary_surrogates.theory import depth_scale

Tensor = torch.Tensor
TRAINED = 0.5
DEPTH_SCALES = 6.0  # the paper's trainable depth, in units of ξ_c


@torch.no_grad()
def grid_correct(grid: SurrogateGrid, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """Per-example correctness of every cell on (x, y): bool (cells, N)."""
    return torch.cat([grid(xb).argmax(-1) == yb for xb, yb in zip(x.split(batch_size), y.split(batch_size),
                                                                  strict=True)], 1)


def grid_accuracy(grid: SurrogateGrid, x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """Accuracy of every cell on (x, y): (cells,) float64."""
    return grid_correct(grid, x, y, batch_size).double().mean(1)


@torch.no_grad()
def network_correct(net: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int) -> Tensor:
    """Per-example correctness (bool, N) of one network returning logits or class probabilities."""
    return torch.cat([net(xb).argmax(-1) == yb for xb, yb in zip(x.split(batch_size), y.split(batch_size),
                                                                 strict=True)])


def binary_correct(grid: SurrogateGrid, x: Tensor, y: Tensor, samples: Sequence[int], seed: int,
                   batch_size: int) -> dict[str, Tensor]:
    """Per cell and test example, bool (cells, N): the stochastic binary network averaged over K sampled weight
    sets for K in `samples` (`stochastic{K}`), and the deterministic binary network W = sign(M) (`deterministic`),
    layers.py."""
    out: dict[str, list[Tensor]] = {f"stochastic{k}": [] for k in samples} | {"deterministic": []}
    for i in range(len(grid.cells)):
        net = grid.cell_network(i)
        for k in samples:
            out[f"stochastic{k}"].append(network_correct(StochasticBinaryNetwork(net, k, seed), x, y, batch_size))
        out["deterministic"].append(network_correct(DeterministicBinaryNetwork(net), x, y, batch_size))
    return {name: torch.stack(rows) for name, rows in out.items()}


def trainability(cells: Sequence[Cell], train_acc: Tensor, sigma_b2: float, surrogate: str,
                 phi: str) -> dict[str, float]:
    """How many cells lie within (L ≤ 6ξ_c) and beyond the predicted depth, how many of them train, the fraction
    that trains on each side (absent for a side without cells), the best cell's training accuracy, and the σ_m²
    whose cells train best on average over depths."""
    depth = torch.tensor([c.depth for c in cells], dtype=torch.float64)
    sm = torch.tensor([c.sigma_m2 for c in cells], dtype=torch.float64)
    within = depth <= DEPTH_SCALES * depth_scale(sm, sigma_b2, surrogate, phi=phi)
    trained = train_acc >= TRAINED
    columns = sm.unique()
    column_mean = torch.stack([train_acc[sm == s].mean() for s in columns])
    metrics = {"best_sigma_m2": columns[column_mean.argmax()].item(), "train_acc_mean": train_acc.mean().item(),
               "train_acc_max": train_acc.max().item()}
    for side, on_side in (("within", within), ("beyond", ~within)):
        metrics[f"cells_{side}_6xi"] = float(on_side.sum())
        metrics[f"trained_cells_{side}_6xi"] = float((trained & on_side).sum())
        if on_side.any():
            metrics[f"trained_{side}_6xi"] = trained[on_side].double().mean().item()
    return metrics


def column_accuracies(cells: Sequence[Cell], acc: Tensor) -> dict[float, Tensor]:
    """{σ_m²: (depths,) the accuracies of that column's cells, shallowest first} of a full depth × σ_m² grid."""
    order = sorted(range(len(cells)), key=lambda i: (cells[i].sigma_m2, cells[i].depth))
    columns: dict[float, list[float]] = {}
    for i in order:
        columns.setdefault(cells[i].sigma_m2, []).append(acc[i].item())
    if len({len(v) for v in columns.values()}) > 1:
        raise ValueError("column_accuracies needs a full grid: every σ_m² at every depth")
    return {s: torch.tensor(v, dtype=torch.float64) for s, v in columns.items()}


def binary_gaps(depths: Sequence[int], surrogate_acc: Tensor, binary: dict[str, Tensor],
                samples: Sequence[int]) -> dict[str, float]:
    """Surrogate minus binary test accuracy: the largest gap over depths of every binary network, the gain of the
    most samples over the fewest (mean over depths), and how much the deterministic binary network's gap grows
    from the shallowest to the deepest cell (point values for the run's summary; measure.py gives their SEs)."""
    gaps = {name: surrogate_acc - acc for name, acc in binary.items()}
    metrics = {f"gap_{name}_max": gap.max().item() for name, gap in gaps.items()}
    deterministic = gaps["deterministic"][torch.tensor(depths).argsort()]
    metrics["gap_deterministic_growth"] = (deterministic[-1] - deterministic[0]).item()
    if len(samples) > 1:
        fewest, most = binary[f"stochastic{min(samples)}"], binary[f"stochastic{max(samples)}"]
        metrics["gain_most_over_fewest_samples"] = (most - fewest).mean().item()
    return metrics
