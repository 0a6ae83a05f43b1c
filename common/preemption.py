"""Preemption: on SIGUSR1 (Slurm's warning before the time limit) a run checkpoints and stops.

Slurm sends the signal to every rank (`--signal=SIGUSR1@90` in the launchers). The handler only notes it;
the training loop acts at the next batch boundary, all ranks at the same one: the checkpoint is then
consistent (never from inside an optimizer step, never a collective that another rank is not in), and it
records how far the epoch went, so the resumed run goes on with the next batch (`TensorBatches` skips the
ones served). Outside training (before it, or during test and analysis after it) nothing is lost by
stopping at once: the last checkpoint holds everything. Either way `Preempted` propagates, and the CLI asks
Slurm to requeue the job (`common.slurm.requeue`).

This replaces Lightning's own SLURM handler, which saves from inside the signal handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from common.errors import Preempted

PREEMPTION_SIGNAL = signal.SIGUSR1


class Preemption(Callback):
    """Checkpoint to `last_ckpt` and raise `Preempted` once SIGUSR1 arrives; install with `listening()`."""

    def __init__(self, last_ckpt: Path) -> None:
        self.last_ckpt = last_ckpt
        self.signalled = False
        self._fitting = False
        self._saved_step: int | None = None
        self._loader_state: dict[str, Any] | None = None

    @contextlib.contextmanager
    def listening(self) -> Iterator[None]:
        """Handle SIGUSR1 for the duration of the block (the previous handler is restored after)."""
        previous = signal.signal(PREEMPTION_SIGNAL, self._on_signal)
        try:
            yield
        finally:
            signal.signal(PREEMPTION_SIGNAL, previous)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            return
        self.signalled = True
        if not self._fitting:
            raise Preempted("Stopped on SIGUSR1 outside training, where the last checkpoint (if any) holds all "
                            "progress.")

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._fitting = True

    # The train loader's position travels in our own checkpoint key: Lightning restores the one it saves only when
    # it sets up the loader after the restore, not when the module asked for it earlier (configure_optimizers
    # reading trainer.estimated_stepping_batches does).
    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if hasattr(trainer.train_dataloader, "state_dict"):
            checkpoint["train_loader"] = trainer.train_dataloader.state_dict()

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._loader_state = checkpoint.get("train_loader")

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._loader_state is not None:  # before the first batch is drawn: the pass starts where it stopped
            trainer.train_dataloader.load_state_dict(self._loader_state)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._saved_step is not None:
            return
        if not trainer.strategy.reduce_boolean_decision(self.signalled, all=False):  # any rank: all stop here
            return
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's end saves last.ckpt anyway; the next batch (or the end of fit) stops
        pending = self.last_ckpt.with_name(f".{self.last_ckpt.name}.tmp")
        trainer.save_checkpoint(pending)
        if trainer.is_global_zero:
            os.replace(pending, self.last_ckpt)  # a kill during the write never leaves half a last.ckpt
        for logger in trainer.loggers:
            logger.save()
        self._saved_step = trainer.global_step

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        # stopping here rather than right after the save lets Lightning log the saved batch's step first
        if self._saved_step is not None:
            raise Preempted(f"Stopped on SIGUSR1 after step {self._saved_step} (epoch {trainer.current_epoch}), "
                            f"saved to {self.last_ckpt}.")

    def on_fit_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._fitting = False
        if self.signalled:  # arrived during the last epoch's end: its checkpoint holds the whole fit
            raise Preempted(f"Stopped on SIGUSR1 at the end of training; the last checkpoint is {self.last_ckpt}.")
