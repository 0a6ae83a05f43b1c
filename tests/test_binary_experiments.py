"""Experiments of Stamatescu et al. (2020): the batched grid against per-cell networks, the trainability and
binary-network scores, the data fraction, and every experiment end to end at a tiny size through `repro run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from common.outcomes import load_outcomes
from papers.binary_surrogates.analysis import binary_gaps, column_accuracies, trainability
from papers.binary_surrogates.grid import Cell, SurrogateGrid, cell_generator
from papers.binary_surrogates.layers import SurrogateNetwork
from papers.binary_surrogates.theory import depth_scale

CELLS = [Cell(d, s) for d in (2, 4, 3) for s in (0.3, 0.9)]


def tiny_grid(weight_map: str = "clip") -> SurrogateGrid:
    return SurrogateGrid(CELLS, 7, 6, 3, sigma_b2=0.01, weight_map=weight_map, seed=1).double()


def test_grid_cells_are_their_own_networks_at_initialisation() -> None:
    grid = tiny_grid("tanh")
    x = torch.randn(5, 7, dtype=torch.float64)
    logits = grid(x)
    assert logits.shape == (len(CELLS), 5, 3) and [c.depth for c in grid.cells] == [4, 4, 3, 3, 2, 2]
    for i, cell in enumerate(grid.cells):
        alone = SurrogateNetwork([7] + [6] * (cell.depth - 1) + [3], sigma_m2=cell.sigma_m2, sigma_b2=0.01,
                                 weight_map="tanh", generator=cell_generator(1, cell)).double()
        assert torch.allclose(logits[i], alone(x), atol=1e-12)
        assert torch.equal(grid.cell_network(i).state_dict()["layers.0.theta"], alone.state_dict()["layers.0.theta"])


def test_cell_initialisation_does_not_depend_on_the_rest_of_the_grid() -> None:
    small = SurrogateGrid([Cell(3, 0.9)], 7, 6, 3, sigma_b2=0.01, seed=1)
    big = SurrogateGrid(CELLS, 7, 6, 3, sigma_b2=0.01, seed=1)
    same = next(i for i, c in enumerate(big.cells) if c == Cell(3, 0.9))
    for a, b in zip(small.cell_network(0).parameters(), big.cell_network(same).parameters(), strict=True):
        assert torch.equal(a, b)


def test_training_the_grid_is_training_every_cell_alone() -> None:
    """Adam on the summed per-cell losses of the stack = Adam on each cell's own network, same batches."""
    grid = tiny_grid()
    alone = [grid.cell_network(i) for i in range(len(CELLS))]
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 7, generator=gen, dtype=torch.float64), torch.randint(0, 3, (8,), generator=gen))
               for _ in range(5)]
    grid_opt = torch.optim.Adam(grid.parameters(), lr=0.05)
    for x, y in batches:
        logits = grid(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(CELLS)), reduction="none").view(len(CELLS), -1)
        grid_opt.zero_grad()
        loss.mean(1).sum().backward()
        grid_opt.step()
    for i, net in enumerate(alone):
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        for x, y in batches:
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        trained = grid.cell_network(i)
        for name, value in net.state_dict().items():
            assert torch.allclose(trained.state_dict()[name], value, atol=1e-10), (grid.cells[i], name)


def test_trainability_counts_cells_on_each_side_of_six_depth_scales() -> None:
    cells = [Cell(d, s) for d in (5, 30) for s in (0.2, 0.7)]  # 6ξ_c: 4.4 at σ_m² = 0.2, 48 at 0.7
    assert (6 * depth_scale(torch.tensor([0.2, 0.7]), 0.001)).tolist() == pytest.approx([4.4, 48.2], abs=0.1)
    acc = torch.tensor([0.3, 0.9, 0.6, 0.4], dtype=torch.float64)  # (5, .2) (5, .7) (30, .2) (30, .7)
    scores = trainability(cells, acc, 0.001, "deterministic", "erf")
    assert scores["cells_within_6xi"] == 2 and scores["cells_beyond_6xi"] == 2
    assert scores["trained_within_6xi"] == 0.5 and scores["trained_beyond_6xi"] == 0.5
    assert scores["trained_cells_within_6xi"] == 1 and scores["trained_cells_beyond_6xi"] == 1
    assert scores["train_acc_max"] == pytest.approx(0.9)
    assert scores["best_sigma_m2"] == pytest.approx(0.7)
    only_within = trainability(cells[1::2], acc[1::2], 0.001, "deterministic", "erf")
    assert "trained_beyond_6xi" not in only_within and only_within["cells_beyond_6xi"] == 0


def test_column_accuracies_list_each_column_by_depth() -> None:
    cells = [Cell(d, s) for d in (30, 5) for s in (0.2, 0.7)]
    columns = column_accuracies(cells, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64))
    torch.testing.assert_close(columns[0.2], torch.tensor([0.3, 0.1], dtype=torch.float64))  # L = 5, then 30
    torch.testing.assert_close(columns[0.7], torch.tensor([0.4, 0.2], dtype=torch.float64))
    with pytest.raises(ValueError, match="full grid"):
        column_accuracies(cells[:3], torch.zeros(3))


def test_binary_gaps() -> None:
    surrogate = torch.tensor([0.9, 0.8, 0.7])
    binary = {"stochastic5": torch.tensor([0.8, 0.6, 0.5]), "stochastic100": torch.tensor([0.88, 0.75, 0.7]),
              "deterministic": torch.tensor([0.5, 0.8, 0.3])}
    gaps = binary_gaps([20, 5, 10], surrogate, binary, [5, 100])
    assert gaps["gap_stochastic100_max"] == pytest.approx(0.05)
    assert gaps["gap_deterministic_growth"] == pytest.approx(0.4 - 0.0)  # depth 20 minus depth 5
    assert gaps["gain_most_over_fewest_samples"] == pytest.approx((0.08 + 0.15 + 0.2) / 3)


TRAINED = ["grid.depths=[2,3]", "model.width=8", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
           "data.eval_batch_size=500"]
RUNS = {
    "simulation": ["simulation.width=40", "simulation.realisations=4", "simulation.chunk=3", "simulation.layers=3"],
    "phase_diagram": ["phase.sigma_m2_points=5", "phase.sigma_b2_points=3"],
    "trainability": [*TRAINED, "grid.sigma_m2=[0.3,0.9]"],
    "trainability_lrt": [*TRAINED, "grid.sigma_m2=[0.3,0.9]", "model.surrogate=lrt"],
    "binary": [*TRAINED, "binary.samples=[2,3]"],
}
EXPECTED = {
    "simulation": ("sim_bonferroni_p", "q_c_vs_maps.png"),
    "phase_diagram": ("chi1_at_critical", "phase_diagram.png"),
    "trainability": ("deterministic_trained_within_6xi", "trainability_deterministic.png"),
    "trainability_lrt": ("lrt_best_sigma_m2", "trainability_lrt.png"),
    "binary": ("binary_gap_stochastic3_max", "binary_vs_depth.png"),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_experiment_end_to_end(repro, run_root: Path, name: str) -> None:
    experiment = name.removesuffix("_lrt")
    assert repro("run", f"binary_surrogates/{experiment}", *RUNS[name]) == 0
    (run_dir,) = (run_root / "binary_surrogates" / experiment).iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    metric, figure = EXPECTED[name]
    assert summary["status"] == "finished" and metric in summary["metrics"]
    assert (run_dir / "figures" / figure).is_file()
    assert not (run_dir / "checkpoints" / "best.ckpt").exists()  # run.save_best=false: last.ckpt only
    if experiment in ("trainability", "binary"):
        cells = json.loads((run_dir / "cells.json").read_text())
        assert len(cells["train_acc"]) == (4 if experiment == "trainability" else 2)
        outcomes = load_outcomes(run_dir)  # two σ_m² columns (per depth), or 4 variants at 2 depths (per example)
        assert len(outcomes) == (2 if experiment == "trainability" else 8)
    if experiment == "binary":  # one σ_m² per binary study
        assert repro("run", "binary_surrogates/binary", *RUNS[name], "grid.sigma_m2=[0.3,0.9]", "run.id=two") == 2
