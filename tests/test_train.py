"""Runs through the public CLI: the run-dir contract, resume after a real SIGKILL, clear failures."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from common.rundir import locked

# a small, fast run: 1797 scikit-learn digits, 2-layer MLP, one sampling seed
FAST = ["data.name=digits", "data.val_size=200", "data.test_size=300", "model.width=64", "model.depth=2",
        "rainbow.samples=1", "rainbow.retrain_epochs=1"]


def run_dir(root: Path, run_id: str, experiment: str = "mlp") -> Path:
    return root / "rainbow" / experiment / run_id


def test_run_leaves_the_run_dir_contract(repro, run_root: Path) -> None:
    assert repro("run", "rainbow/mlp", *FAST, "trainer.max_epochs=2", "run.id=contract") == 0
    rd = run_dir(run_root, "contract")
    for name in ("config.yaml", "metrics.csv", "checkpoints/last.ckpt", "summary.json", "figures/resampling.png"):
        assert (rd / name).is_file(), name
    summary = json.loads((rd / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["paper"] == "rainbow" and summary["run_id"] == "contract"
    assert {"started", "finished", "git_sha", "host"} <= summary.keys()
    assert {"test/acc", "val/acc", "train/loss", "resample/rainbow_acc", "resample/noalign_acc"} <= summary[
        "metrics"].keys()
    metrics = summary["metrics"]  # a tiny rainbow network: aligned sampling far above unaligned
    assert metrics["resample/rainbow_acc"] > metrics["resample/noalign_acc"] + 0.3
    header = (rd / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "step", "train/loss_step", "val/acc"} <= set(header)
    # running it again reuses the finished run instead of training again
    mtime = (rd / "summary.json").stat().st_mtime
    assert repro("run", "rainbow/mlp", *FAST, "trainer.max_epochs=2", "run.id=contract") == 0
    assert (rd / "summary.json").stat().st_mtime == mtime


def _cli(run_root: Path, run_id: str, epochs: int) -> list[str]:
    return [sys.executable, "-m", "common.cli", "run", "rainbow/mlp", *FAST, f"trainer.max_epochs={epochs}",
            f"run.root={run_root}", f"run.id={run_id}", "trainer.enable_progress_bar=false"]


def _epoch_of(ckpt: Path) -> int:
    """The epoch of a checkpoint, -1 while it does not exist or is being written."""
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]
    except Exception:  # a half-written file fails in many ways; poll again
        return -1


def test_resume_after_sigkill_matches_an_uninterrupted_run(run_root: Path) -> None:
    epochs = 30
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    straight = subprocess.run(_cli(run_root, "straight", epochs), capture_output=True, text=True, env=env)
    assert straight.returncode == 0, straight.stderr[-2000:]

    ckpt = run_dir(run_root, "killed") / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(_cli(run_root, "killed", epochs), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if _epoch_of(ckpt) >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed: give it more epochs"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 <= _epoch_of(ckpt) < epochs - 1
    summary = json.loads((ckpt.parent.parent / "summary.json").read_text())
    assert summary["status"] == "running"  # SIGKILL: no chance to write anything else

    resumed = subprocess.run(_cli(run_root, "killed", epochs), capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = json.loads((run_dir(run_root, "straight") / "summary.json").read_text())["metrics"]
    b = json.loads((run_dir(run_root, "killed") / "summary.json").read_text())["metrics"]
    assert a.keys() == b.keys()
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-7), key
    # metrics.csv holds every epoch's validation row exactly once across the kill and the resume
    with (run_dir(run_root, "killed") / "metrics.csv").open() as handle:
        val_epochs = [int(r["epoch"]) for r in csv.DictReader(handle) if r["val/acc"]]
    assert val_epochs == list(range(epochs))


def test_last_checkpoint_is_the_last_epoch_even_without_improvement(repro, run_root: Path) -> None:
    # lr = 0: val/acc never improves after epoch 0, yet a resume must start after the last finished epoch
    assert repro("run", "rainbow/mlp", *FAST, "optim.lr=0.0", "trainer.max_epochs=2", "run.id=flat") == 0
    checkpoints = run_dir(run_root, "flat") / "checkpoints"
    assert _epoch_of(checkpoints / "last.ckpt") == 1 and _epoch_of(checkpoints / "best.ckpt") == 0


def test_nan_loss_stops_with_step_and_checkpoint(repro, run_root: Path, capsys) -> None:
    assert repro("run", "rainbow/mlp", *FAST, "optim.lr=1e30", "trainer.max_epochs=3", "run.id=nan") == 2
    err = capsys.readouterr().err
    assert "loss became" in err and "at step" in err and "checkpoint" in err and "Traceback" not in err
    summary = json.loads((run_dir(run_root, "nan") / "summary.json").read_text())
    assert summary["status"] == "failed"


def test_locked_run_dir_is_refused(repro, run_root: Path, capsys) -> None:
    rd = run_dir(run_root, "busy")
    with locked(rd):
        assert repro("run", "rainbow/mlp", *FAST, "run.id=busy") == 2
    assert "in use by pid" in capsys.readouterr().err
    assert not (rd / "summary.json").exists()


def test_checkpoint_from_another_experiment_is_refused(repro, run_root: Path, capsys) -> None:
    rd = run_dir(run_root, "foreign")
    (rd / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 0, "repro": {"paper": "rainbow", "experiment": "cnn", "format": 1}},
               rd / "checkpoints" / "last.ckpt")
    assert repro("run", "rainbow/mlp", *FAST, "run.id=foreign") == 2
    assert "another experiment or an incompatible version" in capsys.readouterr().err


def test_corrupt_checkpoint_is_named(repro, run_root: Path, capsys) -> None:
    rd = run_dir(run_root, "corrupt")
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    assert repro("run", "rainbow/mlp", *FAST, "run.id=corrupt") == 2
    err = capsys.readouterr().err
    assert "last.ckpt" in err and "corrupt" in err


def test_same_run_id_with_another_config_is_refused(repro, run_root: Path, capsys) -> None:
    assert repro("run", "rainbow/mlp", *FAST, "trainer.fast_dev_run=true", "run.id=same") == 0
    assert repro("run", "rainbow/mlp", *FAST, "trainer.fast_dev_run=true", "model.width=32", "run.id=same") == 2
    assert "another config" in capsys.readouterr().err


def test_config_errors_write_nothing(repro, run_root: Path, capsys) -> None:
    assert repro("run", "rainbow/mlp", "trainer.max_epochz=3") == 2
    assert "did you mean trainer.max_epochs" in capsys.readouterr().err
    assert not run_root.exists()


def test_missing_dataset_writes_nothing(repro, run_root: Path, tmp_path: Path, capsys) -> None:
    assert repro("run", "rainbow/mlp", "data.name=mnist", f"data.root={tmp_path / 'nowhere'}") == 2
    err = capsys.readouterr().err
    assert "data.root" in err and "Traceback" not in err
    assert not run_root.exists()


def test_wandb_offline_run(repro, run_root: Path, monkeypatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    assert repro("run", "rainbow/mlp", *FAST, "trainer.max_epochs=1", "logger.wandb.enabled=true", "run.id=wb") == 0
    logs = list(run_dir(run_root, "wb").glob("wandb/offline-run-*/run-*.wandb"))
    assert len(logs) == 1


def test_wandb_run_resumes_under_the_same_id(repro, run_root: Path, monkeypatch) -> None:
    """A run stopped by SIGUSR1 and run again logs on to the same W&B run id, from where its checkpoint left off."""
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged: list[tuple[int, str, int]] = []  # (attempt, W&B run id, global step)
    attempt = [1]
    real = WandbLogger.log_metrics

    def log_then_preempt(self, metrics, step=None):
        logged.append((attempt[0], self.experiment.id, step))
        if attempt[0] == 1 and len(logged) == 2:  # as Slurm does before the time limit
            os.kill(os.getpid(), signal.SIGUSR1)
        return real(self, metrics, step)

    monkeypatch.setattr(WandbLogger, "log_metrics", log_then_preempt)
    args = ("run", "rainbow/mlp", *FAST, "trainer.max_epochs=3", "logger.wandb.enabled=true", "run.id=wbr")
    assert repro(*args) == 75  # stopped, checkpointed, to be resumed
    saved_step = torch.load(run_dir(run_root, "wbr") / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    attempt[0] = 2
    assert repro(*args) == 0
    first, second = ([(i, s) for a, i, s in logged if a == n] for n in (1, 2))
    ids = {i for i, _ in first + second}
    assert len(ids) == 1 and json.loads((run_dir(run_root, "wbr") / "summary.json").read_text())["wandb_id"] in ids
    assert 0 < saved_step <= min(s for _, s in second)  # the second attempt goes on, it does not restart at 0
    # offline, each attempt writes offline-run-<start second>-<id> (one folder when both start in the same second)
    assert list(run_dir(run_root, "wbr").glob(f"wandb/offline-run-*-{ids.pop()}/run-*.wandb"))


def test_ddp_two_cpu_processes_share_one_run_dir(run_root: Path) -> None:
    # Lightning's ddp launcher re-runs this command as rank 1; rank 0 alone owns the run dir
    cmd = [*_cli(run_root, "ddp", 2), "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("finished:") == 1
    summary = json.loads((run_dir(run_root, "ddp") / "summary.json").read_text())
    assert summary["status"] == "finished" and "resample/rainbow_acc" in summary["metrics"]
    assert list((run_root / "rainbow" / "mlp").iterdir()) == [run_dir(run_root, "ddp")]
