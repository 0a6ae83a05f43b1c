"""A LightningModule that trains any classifier network with cross-entropy."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from common.optim import build_optimizer


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).float().mean()


class ImageClassifier(L.LightningModule):
    """Cross-entropy training of `net`.

    Logs train/loss and train/acc (epoch means, summed on the device), train/loss_step every
    `trainer.log_every_n_steps` steps, and val/loss, val/acc, test/loss, test/acc per epoch.
    """

    def __init__(self, cfg: DictConfig, net: nn.Module) -> None:
        super().__init__()
        # the resolved config travels in every checkpoint
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        self.net = net
        # [Σ loss·batch, Σ correct, Σ batch] of the epoch on the device: one self.log per epoch, no per-step host
        # sync. Not in the state dict; checkpoints carry it (below) so an epoch resumed mid-way sums all its batches.
        self.register_buffer("_train_sums", torch.zeros(3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_train_epoch_start(self) -> None:
        self._train_sums.zero_()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_sums"] = self._train_sums.cpu()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "train_sums" in checkpoint:  # older checkpoints lack it: they were all taken at an epoch's end
            self._train_sums.copy_(checkpoint["train_sums"])

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        with torch.no_grad():
            self._train_sums += torch.stack([loss * len(y), (logits.argmax(-1) == y).sum(), y.new_tensor(len(y))])
        if self.trainer.global_step % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True)  # self.log costs ~0.5 ms: not every step
        return loss

    def on_train_epoch_end(self) -> None:
        loss_sum, correct, count = self._train_sums
        self.log("train/loss", loss_sum / count, sync_dist=True)
        self.log("train/acc", correct / count, sync_dist=True)

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self.net(x)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)
        self.log(f"{stage}/acc", accuracy(logits, y), prog_bar=stage == "val", batch_size=len(y), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.cfg.optim, self.net.parameters(), self.cfg.trainer.max_epochs,
                               int(self.trainer.estimated_stepping_batches))
