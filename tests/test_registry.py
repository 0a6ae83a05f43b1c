"""Tests generated from the registry, with no per-paper code:
- every paper imports, declares claims (each with a kind and a source) and plans at both scales that compose;
- every experiment has a test-size overlay, and every plan run at test size (`tiny=true`: training, test and
  analysis) gives the paper's `measure` every claim metric it declares at that scale, as a Measured;
- every paper-scale config runs a CPU fast_dev_run step at its full model size through the real data loaders;
- every experiment trains under bf16 autocast.

Paper-scale configs read CIFAR-10 / MNIST from `data.root`: here that is a folder of tiny files in the real
torchvision on-disk formats (tests/datafiles.py).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from common.claims import scorecard, unmeasured_claims
from common.config import SCALES, compose, config_dir
from common.errors import UserError
from common.registry import BROKEN, RunPlan, discover
from common.stats import Measured
from tests.datafiles import write_cifar10_batches, write_cifar100_files, write_mnist_idx
from tests.tiny import tiny_results

PAPERS = sorted(discover())
PAPER_SCALES = [pytest.param(paper, scale, id=f"{paper}@{scale}") for paper in PAPERS for scale in SCALES]
PAPER_CONFIGS = [pytest.param(paper, exp, id=f"{paper}/{exp}@paper") for paper, spec in sorted(discover().items())
                 for exp in spec.experiments if (config_dir(paper) / f"{exp}.paper.yaml").exists()]


def write_tiny_data(root: Path) -> Path:
    write_mnist_idx(root, n_train=64, n_test=32)
    write_cifar10_batches(root, n_per_batch=8)
    write_cifar100_files(root, n_train=64, n_test=16)
    return root


@pytest.fixture(scope="module")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("data"))


@functools.cache
def tiny_measured(paper: str, scale: str) -> dict[str, Measured]:
    """What `measure` makes of the paper's whole plan run at test size (computed once per session)."""
    spec = discover()[paper]
    work = Path(tempfile.mkdtemp(prefix=f"tiny-{paper}-{scale}-"))
    atexit.register(shutil.rmtree, work, True)
    results = tiny_results(spec, scale, write_tiny_data(work / "data"), work / "runs")
    return spec.measure(results, scale, work / "figures")


def test_every_paper_imports() -> None:
    assert BROKEN == {}


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_declares_claims_and_plans(paper: str) -> None:
    spec = discover()[paper]
    assert spec.claims and all(c.kind and c.source for c in spec.claims)
    assert any(c.kind == "paper" for c in spec.claims), "a paper needs at least one claim of the paper's own"
    for scale in SCALES:
        assert spec.plan(scale), f"{paper}: no plan at {scale} scale"


@pytest.mark.parametrize(("paper", "scale"), PAPER_SCALES)
def test_every_plan_composes(paper: str, scale: str) -> None:
    spec = discover()[paper]
    for plan in spec.plan(scale):
        assert plan.experiment in spec.experiments, plan
        compose(paper, plan.experiment, plan.overrides)


def test_a_mistyped_plan_override_fails_the_plan_test() -> None:
    spec = discover()["rainbow"]
    plan = spec.plan("smoke")[0]
    mistyped = RunPlan(plan.experiment, (*plan.overrides, "model.widht=3"))
    broken = dataclasses.replace(spec, plan=lambda scale: [mistyped])
    with pytest.raises(UserError, match="model.widht"):
        for p in broken.plan("smoke"):
            compose(broken.name, p.experiment, p.overrides)


@pytest.mark.parametrize("paper", PAPERS)
def test_every_experiment_has_a_tiny_overlay(paper: str) -> None:
    for experiment in discover()[paper].experiments:
        assert (config_dir(paper) / f"{experiment}.tiny.yaml").exists(), experiment
        compose(paper, experiment, ["tiny=true"])


@pytest.mark.parametrize(("paper", "scale"), PAPER_SCALES)
def test_tiny_plan_measures_every_claim(paper: str, scale: str) -> None:
    spec = discover()[paper]
    measured = tiny_measured(paper, scale)
    assert unmeasured_claims(spec.claims, measured, scale) == []
    rows = scorecard(spec.claims, measured, scale)
    assert all(r["measured"] is not None or r["expected_scale"] != scale for r in rows)


def test_a_mistyped_claim_metric_fails_the_measure_test() -> None:
    spec = discover()["rainbow"]
    claim = next(c for c in spec.claims if "smoke" in c.expected)
    mistyped = dataclasses.replace(claim, metric=claim.metric + "_typo")
    measured = tiny_measured("rainbow", "smoke")
    assert unmeasured_claims((mistyped,), measured, "smoke") == [
        f"{claim.id} (metric '{claim.metric}_typo': missing)"]


@pytest.mark.parametrize(("paper", "experiment"), PAPER_CONFIGS)
def test_fast_dev_run_at_paper_size(repro, run_root: Path, tiny_data_root: Path, paper: str, experiment: str) -> None:
    args = ["scale=paper", "trainer.fast_dev_run=true", "data.batch_size=4", "data.eval_batch_size=8",
            f"data.root={tiny_data_root}", "data.val_size=8"]
    assert repro("run", f"{paper}/{experiment}", *args) == 0
    [summary] = run_root.glob(f"{paper}/{experiment}/*/summary.json")
    summary = json.loads(summary.read_text())
    assert summary["status"] == "finished" and summary["metrics"]
    if experiment not in discover()[paper].computations:  # a trained network is tested
        assert "test/acc" in summary["metrics"]


@pytest.mark.parametrize(("paper", "experiment"), [pytest.param(paper, exp, id=f"{paper}/{exp}")
                                                   for paper, spec in sorted(discover().items())
                                                   for exp in spec.experiments])
def test_bf16_mixed_precision_runs(repro, run_root: Path, paper: str, experiment: str) -> None:
    """`trainer.precision=bf16-mixed` (autocast to bfloat16; on the CPU here, as on a GPU) trains every experiment:
    float32 islands (complex activations, K and its SVD, mixed-dtype products) stay float32."""
    args = ["trainer.precision=bf16-mixed", "trainer.fast_dev_run=true", "data.batch_size=4", "data.eval_batch_size=8"]
    assert repro("run", f"{paper}/{experiment}", *args) == 0
    [summary] = run_root.glob(f"{paper}/{experiment}/*/summary.json")
    assert json.loads(summary.read_text())["status"] == "finished"
