"""The batched sweep of Alleman et al. (2024): every (nonlinearity, knob value, seed) network in one model.

Each network minimises its own mean binary cross-entropy of sigmoid(ŷ) against the k target bits; the loss of
the stack is the sum, so plain SGD on the stacked parameters is exactly independent SGD per network. A network
stops (its gradient is masked to zero) once no parameter moved more than `sweep.tolerance` over an epoch (the
paper's early stop); the run stops when all have. `analyze` measures every network's training accuracy and geometry
(papers/task_geometry/analysis), writes geometry.json, the figures and outcomes.npz: the per-seed values at the
largest knob value of every metric and nonlinearity (`{metric}_{activation}`, one value per seed, seeds in the same
order), from which measure.py takes the paired Tanh − ReLU gaps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from common.errors import UserError
from common.optim import build_optimizer
from common.outcomes import save_outcomes
from papers.task_geometry.analysis import (
    aggregate,
    at_largest_knob,
    headline,
    per_network,
    seed_averaged,
    train_accuracy,
)
from papers.task_geometry.dynamics import class_axes, inter_fraction, plot_trajectories, project
from papers.task_geometry.nets import StackedNets
from papers.task_geometry.plots import plot_sweep
from papers.task_geometry.tasks import TaskDataModule


class GeometrySweepModule(L.LightningModule):
    def __init__(self, cfg: DictConfig, data: TaskDataModule) -> None:
        super().__init__()
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        self.knobs = data.knobs
        s = cfg.sweep
        self.net = StackedNets(list(s.activations), len(data.knobs), [s.first_seed + i for i in range(s.seeds)],
                               cfg.task.dim, s.width, data.k)
        self.kind = data.kind
        g = self.net.size
        self.register_buffer("active", torch.ones(g, dtype=torch.bool))
        self.register_buffer("stopped_epoch", torch.full((g,), -1, dtype=torch.long))
        self.snapshots: list[torch.Tensor] = []  # weight-dynamics projections (dynamics.py), first at epoch 0
        self.snapshot_epochs: list[int] = []
        self.axes = None
        if cfg.dynamics.every_n_epochs > 0:
            if data.k != 1:
                raise UserError(f"The weight-dynamics view (dynamics.every_n_epochs > 0) needs one target: "
                                f"task.k={data.k}. Use task.k=1.")
            self.axes = class_axes(data.clean, data.targets[:, 0])

    def _snapshot(self, epoch: int) -> None:
        if self.axes is not None and (not self.snapshot_epochs or self.snapshot_epochs[-1] != epoch):
            self.snapshots.append(project(self.net.w.detach().cpu(), self.net.knob_of.cpu(), *self.axes))
            self.snapshot_epochs.append(epoch)

    def on_fit_start(self) -> None:
        self._snapshot(0)  # no-op on a resume: the snapshots come back with the checkpoint

    def on_fit_end(self) -> None:
        self._snapshot(self.current_epoch)  # the last weights, wherever training stopped

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.snapshots:
            checkpoint["weight_dynamics"] = {"epochs": self.snapshot_epochs, "snapshots": torch.stack(self.snapshots)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("weight_dynamics")
        if saved:
            self.snapshot_epochs, self.snapshots = list(saved["epochs"]), list(saved["snapshots"])

    def _losses(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-network mean BCE (G,) and accuracy (G,) on a batch x (B, K, D), y (B, k)."""
        x, y = batch
        logits = self.net(x.transpose(0, 1))
        target = y.expand_as(logits)
        losses = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((1, 2))
        accuracy = ((logits > 0).float() == target).float().mean((1, 2))
        return losses, accuracy

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, accuracy = self._losses(batch)
        self.log("train/loss", losses.mean(), on_step=False, on_epoch=True)
        self.log("train/acc", accuracy.mean(), on_step=False, on_epoch=True)
        return losses.sum()

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        mask = self.active.to(self.net.w.dtype)
        self.net.w.grad.mul_(mask[:, None, None])
        self.net.b1.grad.mul_(mask[:, None])

    def on_train_epoch_start(self) -> None:
        self._start = (self.net.w.detach().clone(), self.net.b1.detach().clone())

    def on_train_epoch_end(self) -> None:
        w0, b0 = self._start
        moved = torch.maximum((self.net.w - w0).abs().amax((1, 2)), (self.net.b1 - b0).abs().amax(1))
        stop = self.active & (moved < self.cfg.sweep.tolerance)
        self.stopped_epoch[stop] = self.current_epoch
        self.active &= ~stop
        self.log("train/active_networks", self.active.float().sum())
        if self.axes is not None and (self.current_epoch + 1) % self.cfg.dynamics.every_n_epochs == 0:
            self._snapshot(self.current_epoch + 1)
        if not self.active.any():
            self.trainer.should_stop = True

    def _eval(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        losses, accuracy = self._losses(batch)
        size = len(batch[1])
        self.log(f"{stage}/loss", losses.mean(), batch_size=size)
        self.log(f"{stage}/acc", accuracy.mean(), batch_size=size, prog_bar=stage == "val")
        self.log(f"{stage}/acc_min", accuracy.min(), batch_size=size)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "test")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.cfg.optim, self.net.parameters(), self.cfg.trainer.max_epochs,
                               int(self.trainer.estimated_stepping_batches))

    def analyze(self, datamodule: TaskDataModule, run_dir: Path) -> dict[str, float]:
        values = per_network(self.net, datamodule, self.cfg.geometry)
        values["train_acc"] = train_accuracy(self.net, datamodule, self.cfg.data.eval_batch_size)
        if self.snapshots:
            snapshots = torch.stack(self.snapshots)  # (T, G, width, 1 + r)
            values["inter_fraction"] = inter_fraction(snapshots[0], snapshots[-1])
            torch.save({"epochs": self.snapshot_epochs, "snapshots": snapshots}, run_dir / "weight_dynamics.pt")
            last = len(self.knobs) - 1
            plot_trajectories(snapshots, {f"{a}, seed {self.net.seeds[0]}": self.net.index(a, last, 0)
                                          for a in self.net.activations}, run_dir / "figures" / "weight_dynamics.png")
        summary = aggregate(values, self.net, self.knobs) | {"seed_averaged": seed_averaged(self.net, datamodule)}
        summary["per_network"] = {m: v.tolist() for m, v in values.items()}
        summary["stopped_epoch"] = self.stopped_epoch.tolist()
        (run_dir / "geometry.json").write_text(json.dumps(summary, indent=1))
        save_outcomes(run_dir, at_largest_knob(values, self.net))  # one value per seed: what the claims rest on
        t = self.cfg.task
        if self.kind == "xor":
            title, knob = f"ε-separable XOR, σ = {t.noise}", "XOR separation ε"
        else:
            family = "random input kernel, " if self.kind == "random_kernel" else ""
            title = f"one hidden layer, {family}d = {t.d} latent bits, k = {t.k} targets, σ = {t.noise}"
            knob = "input-target alignment c"
        plot_sweep(summary, run_dir / "figures" / "geometry_vs_knob.png", title, knob)
        return headline(summary) | {"train_labels": float(datamodule.splits["train"][1].numel())}
