"""Tests generated from the registry: every experiment of every paper, at every scale it declares,
composes in struct mode and runs a CPU fast_dev_run step through the real data loaders.

Paper-scale configs read CIFAR-10 / MNIST from `data.root`: here that is a folder of tiny files in
the real torchvision on-disk formats (tests/datafiles.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.config import CONFIG_DIR, SCALES
from common.registry import discover
from tests.datafiles import write_cifar10_batches, write_mnist_idx

CASES = [pytest.param(paper, exp, scale, id=f"{paper}/{exp}@{scale}")
         for paper, spec in sorted(discover().items()) for exp in spec.experiments for scale in SCALES
         if scale == "smoke" or (CONFIG_DIR / paper / f"{exp}.{scale}.yaml").exists()]


@pytest.fixture(scope="module")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root, n_train=64, n_test=32)
    write_cifar10_batches(root, n_per_batch=8)
    return root


@pytest.mark.parametrize(("paper", "experiment", "scale"), CASES)
def test_fast_dev_run(repro, run_root: Path, tiny_data_root: Path, paper: str, experiment: str, scale: str) -> None:
    args = [f"scale={scale}", "trainer.fast_dev_run=true", "data.batch_size=4", "data.eval_batch_size=8"]
    if scale == "paper":  # the paper's settings, on a folder of tiny real-format files
        args += [f"data.root={tiny_data_root}", "data.val_size=8"]
    assert repro("run", f"{paper}/{experiment}", *args) == 0
    summaries = list(run_root.glob(f"{paper}/{experiment}/*/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
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


def test_every_paper_declares_claims_and_plans() -> None:
    for name, spec in discover().items():
        assert spec.claims, name
        ids = [c.id for c in spec.claims]
        assert len(ids) == len(set(ids)), f"{name}: duplicate claim ids"
        for scale in SCALES:
            for plan in spec.plan(scale):
                assert plan.experiment in spec.experiments, (name, plan)
