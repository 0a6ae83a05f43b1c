"""The task family, the stacked networks and the sweep of Alleman et al. (2024)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from common.claims import scorecard
from common.config import compose
from common.errors import UserError
from common.metrics.cka import cka, hsic
from common.metrics.geometry import kernel_alignment
from common.outcomes import RunResult, load_outcomes
from common.registry import RunPlan
from papers.task_geometry.analysis import at_largest_knob, seed_averaged, train_accuracy
from papers.task_geometry.claims import CLAIMS
from papers.task_geometry.dynamics import class_axes, inter_fraction, project
from papers.task_geometry.measure import measure
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
    assert summary["gap_target_alignment_cmax"] == pytest.approx(gap)
    seeds = load_outcomes(run_dir)  # per seed at c_max: the values the claims rest on
    assert seeds["target_alignment_tanh"] - seeds["target_alignment_relu"] == pytest.approx(
        [geometry["per_network"]["target_alignment"][i] - geometry["per_network"]["target_alignment"][6 + i]
         for i in (4, 5)], abs=1e-6)  # stored as float32
    assert 0.5 <= summary["train_acc_tanh_cmax"] <= 1 and summary["train_labels"] == 256
    assert (run_dir / "figures/geometry_vs_knob.png").stat().st_size > 0


def test_random_kernel_task_has_alignment_c_and_one_kernel_for_every_knob() -> None:
    knobs = [0.0, 0.3, 0.6, 0.9]
    data = TaskDataModule(_cfg(kind="random_kernel", d=3, k=1, dim=20, knobs=knobs, train_size=32, val_size=8))
    for k, c in enumerate(knobs):  # the embedding keeps the kernel, so the alignment is c exactly
        assert kernel_alignment(data.clean[k].double(), data.targets.double()) == pytest.approx(c, abs=1e-5)
    # the part of the kernel orthogonal to the target is the same random kernel at every knob value (up to scale)
    signs = walsh_functions(3) / math.sqrt(8)
    rest = signs[:, 1:] @ signs[:, 1:].T
    parts = [rest @ (x.double() @ x.double().T) @ rest for x in data.clean]
    torch.testing.assert_close(parts[0] / parts[0].norm(), parts[3] / parts[3].norm(), atol=1e-5, rtol=1e-5)
    with pytest.raises(UserError, match=r"random-kernel knob c=1.0 must be in \[0, 1\)"):
        TaskDataModule(_cfg(kind="random_kernel", d=3, k=1, knobs=[1.0]))


def test_seed_averaged_alignment_is_the_cka_of_the_averaged_kernel() -> None:
    """CKA of the seeds' features side by side = CKA of the seed-averaged Gram matrix (computed with hsic)."""
    data = TaskDataModule(_cfg(d=3, k=1, dim=20, num_knobs=2, train_size=32, val_size=8))
    net = StackedNets(["tanh", "relu"], 2, [0, 1, 2], 20, 16, 1)
    averaged = seed_averaged(net, data)
    with torch.no_grad():
        h = net.hidden(data.clean).double()
    ky = data.targets.double() @ data.targets.double().T
    for activation in ("tanh", "relu"):
        first = net.index(activation, 1, 0)
        k_bar = sum(z @ z.T for z in h[first:first + 3]) / 3
        expected = hsic(k_bar, ky) / torch.sqrt(hsic(k_bar, k_bar) * hsic(ky, ky))
        assert averaged[activation]["target_alignment"][1] == pytest.approx(expected.item(), rel=1e-9)


def test_class_axes_and_inter_fraction_on_a_constructed_task() -> None:
    data = TaskDataModule(_cfg(d=2, k=1, dim=12, knobs=[0.5], train_size=32, val_size=8))
    u, basis = class_axes(data.clean, data.targets[:, 0])
    assert u.shape == (1, 12) and basis.shape == (1, 12, 2)
    frame = torch.cat([u[0, :, None], basis[0]], 1)
    torch.testing.assert_close(frame.T @ frame, torch.eye(3, dtype=torch.float64))  # orthonormal, B ⟂ u
    w0 = torch.randn(2, 12, 5, dtype=torch.float64)
    knob_of = torch.zeros(2, dtype=torch.long)
    moved = w0.clone()
    moved[0] += 0.3 * u[0][:, None]  # network 0 moves along the inter-class axis only
    moved[1] += 0.3 * basis[0][:, :1]  # network 1 along an intra-class axis only
    fractions = inter_fraction(project(w0, knob_of, u, basis), project(moved, knob_of, u, basis))
    torch.testing.assert_close(fractions, torch.tensor([1.0, 0.0], dtype=torch.float64))
    with pytest.raises(UserError, match="needs an inter-class axis"):
        class_axes(TaskDataModule(_cfg(d=2, k=1, dim=12, knobs=[0.0])).clean, data.targets[:, 0])


def test_weight_dynamics_run_records_every_unit_from_its_initial_weights(repro, run_root: Path) -> None:
    args = ["sweep.seeds=2", "trainer.max_epochs=3", "task.train_size=400", "task.val_size=64",
            "geometry.samples_per_condition=10", "dynamics.every_n_epochs=2"]
    assert repro("run", "task_geometry/dynamics", *args) == 0
    [run_dir] = (run_root / "task_geometry/dynamics").iterdir()
    saved = torch.load(run_dir / "weight_dynamics.pt")
    assert saved["epochs"] == [0, 2, 3] and saved["snapshots"].shape == (3, 2 * 2, 120, 3)
    cfg = compose("task_geometry", "dynamics", args)
    data = TaskDataModule(cfg)
    fresh = StackedNets(["tanh", "relu"], 1, [0, 1], cfg.task.dim, 120, 1)  # the initial weights, built anew
    torch.testing.assert_close(saved["snapshots"][0], project(fresh.w.detach(), fresh.knob_of,
                                                              *class_axes(data.clean, data.targets[:, 0])))
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    assert 0 <= metrics["inter_fraction_tanh_cmax"] <= 1 and "gap_inter_fraction_cmax" in metrics
    assert load_outcomes(run_dir)["inter_fraction_relu"].shape == (2,)
    assert (run_dir / "figures" / "weight_dynamics.png").stat().st_size > 0
    assert repro("run", "task_geometry/sweep", "task.k=2", "dynamics.every_n_epochs=1", "run.id=k2") == 2


def test_cnn_experiment_measures_both_layers_from_shared_initial_weights(repro, run_root: Path) -> None:
    args = ["data.name=digits", "data.val_size=200", "data.test_size=300", "sweep.seeds=2", "trainer.max_epochs=1"]
    cfg = compose("task_geometry", "cnn", args)
    from papers.task_geometry import build_datamodule, build_module

    module = build_module(cfg, build_datamodule(cfg))
    tanh, relu = module.nets[0], module.nets[1]  # seed 0: a Tanh and a ReLU network from the same weights
    assert all(torch.equal(a, b) for a, b in zip(tanh.state_dict().values(), relu.state_dict().values(), strict=True))
    assert tanh.act is torch.tanh and relu.act is torch.relu
    assert repro("run", "task_geometry/cnn", *args) == 0
    [run_dir] = (run_root / "task_geometry/cnn").iterdir()
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    for layer in ("fc1", "fc2"):
        assert 0 <= metrics[f"cnn_{layer}_target_alignment_tanh"] <= 1 and f"cnn_{layer}_gap_ccgp" in metrics
        assert load_outcomes(run_dir)[f"{layer}_ccgp_relu"].shape == (2,)
    assert (run_dir / "figures" / "cnn_geometry.png").stat().st_size > 0
    assert repro("run", "task_geometry/cnn", *args, "cnn.groups=[[0,1,2]]", "run.id=bad") == 2


def test_train_accuracy_scores_every_network_on_the_training_split() -> None:
    data = TaskDataModule(_cfg(d=3, k=1, dim=20, num_knobs=2, train_size=40, val_size=8))
    net = StackedNets(["tanh", "relu"], 2, [0, 1], 20, 6, 1)
    acc = train_accuracy(net, data, batch_size=16)
    x, y = data.splits["train"]
    with torch.no_grad():
        expected = ((net(x.transpose(0, 1)) > 0).float() == y).float().mean((1, 2))
    torch.testing.assert_close(acc, expected.double())
    seeds = at_largest_knob({"train_acc": acc}, net)
    torch.testing.assert_close(seeds["train_acc_relu"], acc[[net.index("relu", 1, 0), net.index("relu", 1, 1)]])


def _sweep_result(gaps: dict[str, list[float]], train_acc: float = 1.0, relu_train: list[float] | None = None,
                  base: float = 0.5) -> RunResult:
    """Per-seed outcomes of a sweep at c_max: ReLU at `base` (1.0 for CCGP at its ceiling), Tanh at base + gap."""
    seeds = len(next(iter(gaps.values())))
    outcomes = {"train_acc_tanh": np.full(seeds, train_acc),
                "train_acc_relu": np.array(relu_train if relu_train else [train_acc] * seeds)}
    for metric, gap in gaps.items():
        relu = np.ones(seeds) if metric == "ccgp" else np.full(seeds, base)
        outcomes |= {f"{metric}_tanh": relu + np.array(gap), f"{metric}_relu": relu}
    return RunResult({"train_labels": 5000.0}, outcomes)


def _rows(results: dict) -> dict[str, dict]:
    return {r["id"]: r for r in scorecard(CLAIMS, measure(results, "smoke", None), "smoke")}


D3 = RunPlan("sweep", ("task.d=3", "task.k=1"))


def test_gap_is_the_mean_over_seeds_with_a_student_t_interval() -> None:
    gaps = [0.1, 0.3, 0.2, 0.4]
    measured = measure({D3: _sweep_result({"target_alignment": gaps})}, "smoke", None)
    gap = measured["d3k1s1_gap_target_alignment_cmax"]
    assert gap.value == pytest.approx(0.25) and gap.se == pytest.approx(np.std(gaps, ddof=1) / 2)
    assert gap.n == 4 and gap.df == 3 and gap.n_of.startswith("seeds (paired")
    assert gap.interval[0] == pytest.approx(0.25 - 3.182446 * gap.se, abs=1e-6)  # t_{0.975, 3}


def test_identical_gaps_are_finite_and_a_zero_gap_at_the_ceiling_is_not_reproduced() -> None:
    """The old z-score was ±inf for identical nonzero gaps and 0 for a CCGP tie at its ceiling."""
    result = _sweep_result({"parallelism": [0.2, 0.2, 0.2], "ccgp": [0.0, 0.0, 0.0]})
    measured = measure({D3: result}, "smoke", None)
    assert measured["d3k1s1_gap_parallelism_cmax"].interval == pytest.approx((0.2, 0.2))
    ccgp = measured["d3k1s1_gap_ccgp_cmax"]
    assert ccgp.value == 0 and ccgp.se == 0 and "ceiling" in ccgp.note
    rows = _rows({D3: result})
    assert rows["tanh_higher_parallelism_d3k1"]["status"] == "reproduced"
    assert rows["tanh_higher_ccgp_d3k1"]["status"] == "not_reproduced"


def test_one_seed_is_inconclusive() -> None:
    rows = _rows({D3: _sweep_result({"target_alignment": [0.3]})})
    assert rows["tanh_higher_target_alignment_d3k1"]["status"] == "inconclusive"


def test_effect_size_floors_are_controls_apart_from_the_direction() -> None:
    rows = _rows({D3: _sweep_result({"target_alignment": [0.06, 0.07, 0.08], "input_alignment": [-0.3, -0.29, -0.31]})})
    assert rows["tanh_higher_target_alignment_d3k1"]["status"] == "reproduced"  # the sign the paper states
    assert rows["target_alignment_gap_larger_than_floor_d3k1"]["status"] == "not_reproduced"  # below 0.1
    assert rows["target_alignment_gap_larger_than_floor_d3k1"]["kind"] == "control"
    assert rows["input_alignment_gap_more_negative_than_floor_d3k1"]["status"] == "reproduced"


def test_a_network_that_did_not_learn_invalidates_its_runs_claims() -> None:
    result = _sweep_result({"target_alignment": [0.2, 0.3, 0.25]}, relu_train=[1.0, 0.6, 1.0])
    measured = measure({D3: result}, "smoke", None)
    assert measured["d3k1s1_train_acc_min_cmax"].value == pytest.approx(0.6)
    rows = _rows({D3: result})
    assert rows["networks_trained_d3k1"]["status"] == "not_reproduced"
    assert rows["tanh_higher_target_alignment_d3k1"]["status"] == "not_run"
    assert rows["tanh_higher_target_alignment_d3k1"]["note"].startswith("invalid: check networks_trained_d3k1")


def test_metrics_are_named_after_the_run_s_task() -> None:
    plans = {RunPlan("sweep", ("task.kind=random_kernel", "task.d=3", "task.k=1")): "rk_d3k1s1_",
             RunPlan("sweep", ("task.d=3", "task.k=1", "task.noise=0.5")): "d3k1s0.5_", RunPlan("xor"): "xor_s0.1_",
             RunPlan("dynamics"): "d2k1s1_"}
    for plan, label in plans.items():
        measured = measure({plan: _sweep_result({"ccgp": [0.0, 0.1]})}, "smoke", None)
        assert {f"{label}gap_ccgp_cmax", f"{label}train_acc_min_cmax"} == set(measured)
