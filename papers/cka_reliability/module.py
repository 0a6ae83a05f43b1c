"""The trained-network experiment of the CKA paper: train a classifier, then translate its features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common.classifier import ImageClassifier
from common.models import build_model
from papers.cka_reliability.translation import translation_study


class TranslationModule(ImageClassifier):
    """Cross-entropy training; `analyze` runs the Fig. 4c translation study on the last hidden features."""

    @torch.no_grad()
    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        self.net.eval()
        x, y = datamodule.train_tensors()
        features = torch.cat([self.net.features(xb).flatten(1) for xb in x.split(self.cfg.data.eval_batch_size)])
        return translation_study(features, y, self.cfg.translation, run_dir / "figures")


def build_module(cfg: DictConfig, datamodule: Any) -> TranslationModule:
    return TranslationModule(cfg, build_model(cfg.model, datamodule.input_shape, datamodule.num_classes))
