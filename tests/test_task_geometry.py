"""The task family, the stacked networks and the sweep of Alleman et al. (2024)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from common.config import compose
from common.errors import UserError
from common.metrics.cka import cka
from papers.task_geometry.nets import ACTIVATIONS, StackedNets
from papers.task_geometry.tasks import TaskDataModule, c_max, centres, knob_weights, latent_bits, walsh_functions


@pytest.mark.parametrize("d", [3, 5])
def test_walsh_functions_are_orthogonal_parities_ordered_by_degree(d: int) -> None:
    h = walsh_functions(d)
    n = 2**d
    torch.testing.assert_close(h.T @ h, n * torch.eye(n - 1, dtype=torch.float64))
    torch.testing.assert_close(h[:, :d], 2 * latent_bits(d) - 1)  # the first d are the bits themselves
    assert torch.equal(h[:, d], h[:, 0] * h[:, 1])  # then the degree-2 parities


@pytest.mark.parametrize(("d", "k"), [(3, 1), (3, 3), (5, 1), (5, 5)])
def test_knob_is_the_input_target_cka(d: int, k: int) -> None:
    targets = latent_bits(d)[:, :k]
    for c in torch.linspace(0, c_max(d, k), 5).tolist():
        pi = knob_weights(d, k, c)
        assert pi.sum().item() == pytest.approx(1) and (pi >= 0).all()
        assert cka(centres(d, k, c), targets).item() == pytest.approx(c, abs=1e-12)
    torch.testing.assert_close(knob_weights(d, k, c_max(d, k)), torch.full((2**d - 1,), 1 / (2**d - 1),
                                                                           dtype=torch.float64))


def _cfg(**task: object) -> OmegaConf:
    cfg = compose("task_geometry", "sweep", [])
    return OmegaConf.merge(cfg, {"task": task})


def test_embedding_keeps_the_geometry_and_samples_are_noisy_centres() -> None:
    data = TaskDataModule(_cfg(d=3, k=1, dim=20, noise=0.0, train_size=64, val_size=8))
    clean = data.clean.double()
    for k, c in enumerate(data.knobs):  # orthonormal rows: x = sqrt(D) μ Q keeps inner products × D
        mu = centres(3, 1, c)
        torch.testing.assert_close(clean[k] @ clean[k].T, 20 * mu @ mu.T, atol=1e-4, rtol=1e-5)
    x, y = data.splits["train"]
    assert x.shape == (64, len(data.knobs), 20) and y.shape == (64, 1)
    rows = [(clean[:, i].float() == x[j]).all().item() for j in range(64) for i in range(8)]
    assert sum(rows) == 64  # without noise every sample is exactly one centre


def test_xor_task_separates_the_parity_classes_by_epsilon() -> None:
    data = TaskDataModule(_cfg(kind="xor", d=2, k=1, dim=12, noise=0.0, knobs=[0.0, 0.5], train_size=32,
                               val_size=8))
    assert data.clean.shape == (2, 4, 12)
    parity = (latent_bits(2).sum(1) % 2).float()
    torch.testing.assert_close(data.targets[:, 0], parity)
    flat = data.clean[0]  # ε = 0: the parity classes have the same mean (XOR is not linearly separable)
    torch.testing.assert_close(flat[parity == 1].mean(0), flat[parity == 0].mean(0))
    moved = (data.clean[1] - data.clean[0])[:, 8:]  # ε moves the classes apart along the third block only
    assert torch.all(moved[parity == 1] > 0) and torch.all(moved[parity == 0] < 0)
    assert (data.clean[1] - data.clean[0])[:, :8].abs().max() == 0
    with pytest.raises(UserError, match="task.dim divisible by 3"):
        TaskDataModule(_cfg(kind="xor", dim=13))


@pytest.mark.parametrize(("task", "message"), [
    ({"d": 3, "k": 4}, r"task.k=4 must be in 1..task.d=3"),
    ({"d": 3, "k": 1, "knobs": [0.5]}, r"c=0.5 must be in \[0, c_max\(d=3, k=1\)\] = \[0, 0.3780\]"),
    ({"d": 5, "k": 1, "dim": 20}, r"task.dim=20 must be >= 2\^d - 1 = 31"),
])
def test_bad_task_is_a_clear_error(task: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        TaskDataModule(_cfg(**task))


def test_stacked_training_equals_independent_networks() -> None:
    """One SGD step on the stack = one SGD step of every network alone; a Tanh net and its ReLU pair, and a
    seed at every knob value, start from the same weights."""
    net = StackedNets(["tanh", "relu"], 3, [0, 1], 10, 6, 2)
    assert torch.equal(net.w[net.index("tanh", 0, 1)], net.w[net.index("relu", 2, 1)])
    x, y = torch.randn(3, 16, 10), torch.randint(0, 2, (16, 2)).float()
    alone = []
    for g in range(net.size):
        w, b1 = net.w[g].detach().clone().requires_grad_(), net.b1[g].detach().clone().requires_grad_()
        act = ACTIVATIONS[net.activations[g // 6]]
        logits = act(x[net.knob_of[g]] @ w + b1) @ net.j[g] + net.b2[g]
        F.binary_cross_entropy_with_logits(logits, y).backward()
        alone.append(w - 0.1 * w.grad)
    loss = F.binary_cross_entropy_with_logits(net(x), y.expand(net.size, -1, -1), reduction="none").mean((1, 2))
    loss.sum().backward()
    with torch.no_grad():
        stepped = net.w - 0.1 * net.w.grad
    torch.testing.assert_close(stepped, torch.stack(alone))
    assert not any(p.requires_grad for p in net.buffers())  # the readout is fixed


def test_sweep_runs_and_measures_every_network(repro, run_root: Path) -> None:
    args = ["sweep.seeds=2", "task.num_knobs=3", "trainer.max_epochs=2", "task.train_size=256",
            "task.val_size=64", "geometry.samples_per_condition=10", "sweep.activations=[tanh,relu]"]
    assert repro("run", "task_geometry/sweep", *args) == 0
    [run_dir] = (run_root / "task_geometry/sweep").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())["metrics"]
    geometry = json.loads((run_dir / "geometry.json").read_text())
    assert len(geometry["per_network"]["ccgp"]) == 2 * 3 * 2
    gap = geometry["gap"]["target_alignment"][-1][0]
    tanh, relu = (geometry["cells"][a]["target_alignment"][-1][0] for a in ("tanh", "relu"))
    assert gap == pytest.approx(tanh - relu)
    assert summary["d3k1s1_gap_target_alignment_cmax"] == pytest.approx(gap)
    assert math.isfinite(summary["d3k1s1_gap_z_parallelism_cmax"])
    assert (run_dir / "figures/geometry_vs_knob.png").stat().st_size > 0
