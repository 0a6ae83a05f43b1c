"""The adaptive-RNN LightningModule (Geadah et al. 2024): cross-entropy on the last state's readout, then the
perturbation sweeps and analyses of `papers/adaptive_rnn/study.py` on the trained network.

Training: the shared `ImageClassifier` (Adam, no clipping unless `trainer.gradient_clip_val`), plus
`lr_plateau`: ReduceLROnPlateau on the epoch's full validation loss (the authors step it on the last
validation batch only), and the constrained (n, s) projected back into range after every step.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common.classifier import ImageClassifier
from common.errors import UserError
from common.linalg import lapack_threads
from common.optim import build_optimizer
from papers.adaptive_rnn.study import study
from papers.adaptive_rnn.tasks import build_network


class AdaptiveRNNModule(ImageClassifier):
    def setup(self, stage: str) -> None:
        """One intra-op thread on a CPU (common.linalg.lapack_threads), as the binary-surrogates grid: the loop's
        small kernels ran 5-50× slower on two threads than on one on a busy 2-core machine (the Lyapunov pass of
        a trained ARU: 1.2-9 s per 300 steps on two threads, 0.12 s on one)."""
        self._threads = contextlib.ExitStack()
        self._threads.enter_context(lapack_threads(torch.empty(0, device=self.trainer.strategy.root_device)))

    def teardown(self, stage: str) -> None:
        self._threads.close()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.net.core.gains.project_()

    def configure_optimizers(self) -> dict:
        config = build_optimizer(self.cfg.optim, self.net.parameters(), self.cfg.trainer.max_epochs,
                                 int(self.trainer.estimated_stepping_batches))
        p = self.cfg.lr_plateau
        if p.enabled:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(config["optimizer"], factor=p.factor,
                                                                   patience=p.patience)
            config["lr_scheduler"] = {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}
        return config

    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        with lapack_threads(self.net.core.w):
            return study(self.net, datamodule.test_tensors(), self.cfg, run_dir)


def build_module(cfg: DictConfig, datamodule: Any) -> AdaptiveRNNModule:
    if cfg.lr_plateau.enabled and cfg.optim.schedule != "none":
        raise UserError(f"lr_plateau.enabled=true and optim.schedule={cfg.optim.schedule}: pick one learning-rate "
                        "schedule (set optim.schedule=none, or lr_plateau.enabled=false).")
    source = datamodule.source
    net = build_network(cfg, source.mean[0], source.std[0], datamodule.num_classes)
    return AdaptiveRNNModule(cfg, net)
