"""One run, end to end: run dir, Trainer, loggers, checkpoints, resume, summary.json.

`run_experiment` is what `repro run` calls. A run dir is locked while in use; re-running the same
run id resumes from `checkpoints/last.ckpt` (the data order is a function of (seed, epoch), so a
resumed run ends with the same weights as an uninterrupted one on CPU). SIGUSR1 (Slurm's warning before
the time limit) checkpoints mid-epoch and stops the run (`common.preemption`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from common.config import identity
from common.data import build_datamodule
from common.errors import Preempted, UserError
from common.preemption import Preemption
from common.registry import PaperSpec
from common.rundir import (
    git_state,
    host,
    locked,
    now,
    read_summary,
    run_dir_of,
    truncate_metrics,
    write_json_atomic,
    write_text_atomic,
)
from common.slurm import job_id
from common.wandb_mode import logs_online

CHECKPOINT_FORMAT = 1  # bump when a change makes older checkpoints unloadable

warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*predefined `max_epochs`.*")
# on a machine with Slurm, a run outside srun is a local run by choice (the launchers always use srun)
warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes an existing metrics.csv; a resumed run appends to it instead."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = sorted(next(csv.reader(handle), []))


class RunCSVLogger(CSVLogger):
    """CSVLogger writing `<run_dir>/metrics.csv`, kept across resumes."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(str(run_dir), name="", version="")

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


class NonFiniteLoss(UserError):
    """Training produced a NaN or infinite loss."""


class RunGuard(Callback):
    """Stops on a non-finite loss, naming the step and the last good checkpoint, and stamps every
    checkpoint with the paper, experiment and format it belongs to.

    The first non-finite step is recorded on the device (no host sync per step) and read every
    `log_every_n_steps` steps, before validation and at the end of each epoch, so no checkpoint is
    ever written from non-finite weights.
    """

    def __init__(self, stamp: dict[str, Any], last_ckpt: Path) -> None:
        self.stamp = stamp
        self.last_ckpt = last_ckpt
        self._first_bad: torch.Tensor | None = None  # [step, loss] of the first non-finite loss; step -1: none

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:  # a manual-optimisation step that returns no loss has nothing to guard
            return
        loss = loss.detach().float()
        if self._first_bad is None:
            self._first_bad = torch.tensor([-1.0, 0.0], device=loss.device)
        new = ~torch.isfinite(loss) & (self._first_bad[0] < 0)
        self._first_bad = torch.where(new, torch.stack([loss.new_tensor(float(trainer.global_step)), loss]),
                                      self._first_bad)
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self._check(trainer)

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if self._first_bad is None or self._first_bad[0] < 0:
            return
        step, loss = self._first_bad.tolist()
        good = (f"the last good checkpoint is {self.last_ckpt}" if self.last_ckpt.exists()
                else "no checkpoint was saved before it")
        raise NonFiniteLoss(
            f"Training stopped: the loss became {loss} at step {int(step)} (epoch {trainer.current_epoch}); "
            f"{good}. Lower optim.lr, set trainer.gradient_clip_val, or check the data for NaN/inf values.")

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["repro"] = self.stamp


def _check_checkpoint(path: Path, stamp: dict[str, Any]) -> int:
    """Verify a checkpoint belongs to this run's paper/experiment/format; return its epoch."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same advice
        raise UserError(f"Cannot read the checkpoint {path} ({type(err).__name__}: {err}). It is corrupt or "
                        "truncated: delete it to restart this run from scratch.") from None
    found = ckpt.get("repro")
    if found != stamp:
        raise UserError(f"The checkpoint {path} was written by {found or 'an unknown program'}, not by "
                        f"{stamp} (another experiment or an incompatible version). Use another run.id, or "
                        "delete the run dir to start over.")
    return int(ckpt["epoch"])


def _check_same_config(run_dir: Path, cfg: DictConfig) -> None:
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return
    old, new = identity(OmegaConf.load(saved)), identity(cfg)
    if old != new:
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise UserError(f"The run dir {run_dir} holds a run with another config ({shown}). Pick a new "
                        "run.id for this config, or delete that run dir to replace it.")


def _wandb_id(run_dir: Path, previous: dict | None) -> str:
    """The W&B run id of a run dir, chosen by its first attempt and kept in summary.json, so that requeued and
    resubmitted jobs resume the same W&B run: under Slurm `<cluster>-<job id>[_<array task>]`, else a hash of
    the run dir."""
    if previous and previous.get("wandb_id"):
        return previous["wandb_id"]
    job = job_id()
    if job is not None:
        return f"{os.environ.get('SLURM_CLUSTER_NAME', 'slurm')}-{job}"
    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:16]


def _wandb_logger(cfg: DictConfig, spec: PaperSpec, experiment: str, run_dir: Path, run_key: str) -> Any:
    from lightning.pytorch.loggers import WandbLogger  # imports wandb: only when enabled

    w = cfg.logger.wandb
    return WandbLogger(project=w.project, entity=w.entity, group=w.group or f"{spec.name}/{experiment}",
                       tags=list(w.tags), id=run_key, name=f"{spec.name}/{experiment}/{cfg.run.id}",
                       save_dir=str(run_dir), offline=not logs_online(w.mode),
                       config=OmegaConf.to_container(cfg, resolve=True))


def _finish_wandb(cfg: DictConfig) -> None:
    """Close this run's W&B run, so that the next run in the same process (sweeps) starts its own."""
    if cfg.logger.wandb.enabled:
        import wandb

        wandb.finish()


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[Callback], loggers: list[Any]) -> L.Trainer:
    t = cfg.trainer
    return L.Trainer(
        default_root_dir=str(run_dir), max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision, deterministic=t.deterministic,
        gradient_clip_val=t.gradient_clip_val, log_every_n_steps=t.log_every_n_steps,
        limit_train_batches=t.limit_train_batches, limit_val_batches=t.limit_val_batches,
        fast_dev_run=t.fast_dev_run, enable_progress_bar=t.enable_progress_bar, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=callbacks, logger=loggers,
        # under srun: ranks from Slurm's variables; requeueing is ours (common.preemption), not Lightning's
        plugins=[SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None)


def _float_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float | torch.Tensor)}


def run_experiment(spec: PaperSpec, experiment: str, cfg: DictConfig) -> dict[str, Any]:
    """Train (or resume, or reuse) one run and return its summary.

    SIGUSR1 stops it with `Preempted` and nothing lost: during training at the next batch end, after a
    checkpoint; anywhere else at once.
    """
    run_dir = run_dir_of(cfg.run.root, spec.name, experiment, cfg.run.id)
    compute = spec.computations.get(experiment)
    preemption = Preemption(run_dir / "checkpoints" / "last.ckpt")
    with preemption.listening():
        datamodule = None
        if compute is None:
            datamodule = spec.build_datamodule(cfg) if spec.build_datamodule else build_datamodule(cfg.data, cfg.seed)
            datamodule.prepare_data()  # a missing or corrupt dataset fails here, before the run dir exists
            if rank_zero_only.rank != 0:  # a DDP worker: rank 0 owns the run dir (lock, config, summary)
                return _train(spec, experiment, cfg, run_dir, datamodule, _Record(spec, experiment, cfg, None),
                              preemption)
        with locked(run_dir):
            _check_same_config(run_dir, cfg)
            previous = read_summary(run_dir)
            if previous and previous.get("status") == "finished":
                return previous
            record = _Record(spec, experiment, cfg, run_dir, previous)
            if compute is None:
                return _train(spec, experiment, cfg, run_dir, datamodule, record, preemption)
            record.start()
            with record.failure():
                L.seed_everything(cfg.seed, verbose=False)
                metrics = compute(cfg, run_dir / "figures")
                logger = RunCSVLogger(run_dir)
                logger.log_metrics(metrics, step=0)
                logger.save()
            return record.finish(metrics)


class _Record:
    """summary.json of one run: running -> finished | failed, written atomically by the run dir's owner
    (rank 0; `run_dir=None` for DDP workers, which write nothing)."""

    def __init__(self, spec: PaperSpec, experiment: str, cfg: DictConfig, run_dir: Path | None,
                 previous: dict | None = None) -> None:
        self.run_dir, self.cfg, self.previous = run_dir, cfg, previous
        self.summary: dict[str, Any] = {
            "paper": spec.name, "experiment": experiment, "run_id": cfg.run.id, "status": "running",
            "metrics": {}, "started": (previous or {}).get("started", now()), "finished": None, **git_state(),
            "host": host()}
        self.clock = time.perf_counter()

    def _write(self) -> None:
        if self.run_dir is not None:
            write_json_atomic(self.run_dir / "summary.json", self.summary)

    def start(self) -> None:
        """config.yaml and a 'running' summary.json; the figures/ folder."""
        if self.run_dir is not None:
            write_text_atomic(self.run_dir / "config.yaml", OmegaConf.to_yaml(self.cfg, resolve=True))
            (self.run_dir / "figures").mkdir(exist_ok=True)
        self._write()
        self.clock = time.perf_counter()

    @contextlib.contextmanager
    def failure(self) -> Iterator[None]:
        """Any exception (Ctrl-C included) marks the run failed, then propagates; a preempted run stays running."""
        try:
            yield
        except Preempted:
            raise
        except BaseException as err:
            self.summary |= {"status": "failed", "error": f"{type(err).__name__}: {err}", "finished": now()}
            self._write()
            raise

    def finish(self, metrics: dict[str, float], **extra: Any) -> dict[str, Any]:
        self.summary |= {"status": "finished", "metrics": metrics, "finished": now(),
                         "duration_s": round(time.perf_counter() - self.clock, 2), **extra}
        self._write()
        return self.summary


def _train(spec: PaperSpec, experiment: str, cfg: DictConfig, run_dir: Path, datamodule: Any,
           record: _Record, preemption: Preemption) -> dict[str, Any]:
    stamp = {"paper": spec.name, "experiment": experiment, "format": CHECKPOINT_FORMAT}
    last_ckpt = preemption.last_ckpt
    resume_from = str(last_ckpt) if last_ckpt.exists() else None
    if resume_from and record.run_dir is not None:  # checked before anything in the run dir changes
        truncate_metrics(run_dir / "metrics.csv", _check_checkpoint(last_ckpt, stamp))
    if cfg.logger.wandb.enabled:
        record.summary["wandb_id"] = _wandb_id(run_dir, record.previous)
    record.start()
    with record.failure():
        try:
            L.seed_everything(cfg.seed, workers=True, verbose=False)
            module = spec.build_module(cfg, datamodule)
            best = [ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val/acc", mode="max",
                                    save_top_k=1, enable_version_counter=False)] if cfg.run.save_best else []
            # its own callback: Lightning's save_last=True refreshes last.ckpt only when val/acc improves, and a
            # resume from it would repeat every epoch since the best one
            last = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1,
                                   enable_version_counter=False)
            loggers: list[Any] = [RunCSVLogger(run_dir)]
            if cfg.logger.wandb.enabled:
                loggers.append(_wandb_logger(cfg, spec, experiment, run_dir, record.summary["wandb_id"]))
            trainer = build_trainer(cfg, run_dir, [*best, last, RunGuard(stamp, last_ckpt), preemption], loggers)
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
            metrics = _float_metrics(trainer.callback_metrics)
            trainer.test(module, datamodule=datamodule, verbose=False)
            metrics |= _float_metrics(trainer.callback_metrics)
            if hasattr(module, "analyze") and trainer.is_global_zero and not cfg.trainer.fast_dev_run:
                analysis = module.analyze(datamodule, run_dir)
                for logger in trainer.loggers:  # metrics.csv and W&B get the analysis too
                    logger.log_metrics(analysis, step=trainer.global_step)
                    logger.save()
                metrics |= analysis
        finally:
            _finish_wandb(cfg)
    return record.finish(metrics, epochs=trainer.current_epoch, steps=trainer.global_step)
