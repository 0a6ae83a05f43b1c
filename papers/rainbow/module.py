"""The rainbow paper's LightningModule: train a network, then run the resampling study on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from common.classifier import ImageClassifier
from common.models import build_model
from papers.rainbow.study import resampling_study


class RainbowModule(ImageClassifier):
    """Cross-entropy training of the configured network; `analyze` samples rainbow networks from it."""

    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        return resampling_study(self.net, datamodule.train_tensors(), datamodule.test_tensors(), self.cfg.rainbow,
                                self.cfg.seed, run_dir)


def build_module(cfg: DictConfig, datamodule: Any) -> RainbowModule:
    return RainbowModule(cfg, build_model(cfg.model, datamodule.input_shape, datamodule.num_classes))
