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
    """Cross-entropy training of `net`; logs train/loss, train/acc, val/loss, val/acc, test/acc."""

    def __init__(self, cfg: DictConfig, net: nn.Module) -> None:
        super().__init__()
        # the resolved config travels in every checkpoint
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=on_step, batch_size=len(y),
                 sync_dist=not on_step)
        self.log(f"{stage}/acc", accuracy(logits, y), on_step=False, on_epoch=True, prog_bar=stage == "val",
                 batch_size=len(y), sync_dist=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.cfg.optim, self.net.parameters(), self.cfg.trainer.max_epochs)
