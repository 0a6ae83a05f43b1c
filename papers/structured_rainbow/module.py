"""The structured-rainbow LightningModule: train a FactConv network, then run the resampling study on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import nn

from common.classifier import ImageClassifier
from common.models import build_model
from common.models.factconv import factorize_convs
from papers.structured_rainbow.features import RandomFeatureNet, ScatteringFeatureNet
from papers.structured_rainbow.study import resampling_study


def factorize(net: nn.Module, f: DictConfig) -> nn.Module:
    """`net` with every Conv2d a FactConv2d (`f` = cfg.factconv: channel factor, rank, spatial init, which factors
    are frozen)."""
    return factorize_convs(net, channel=f.channel, rank=f.rank, spatial_init=f.spatial_init,
                           freeze_channel=f.freeze_channel, freeze_spatial=f.freeze_spatial)


class StructuredRainbowModule(ImageClassifier):
    """Cross-entropy training of the factors, BatchNorm and classifier; `analyze` resamples the noise."""

    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        return resampling_study(self.net, datamodule.train_tensors(), datamodule.test_tensors(), self.cfg.resample,
                                self.cfg.seed, run_dir)


def build_module(cfg: DictConfig, datamodule: Any) -> ImageClassifier:
    """A net of the feature table trains as it is; any other model is factorised and resampled."""
    net = build_model(cfg.model, datamodule.input_shape, datamodule.num_classes)
    if isinstance(net, RandomFeatureNet | ScatteringFeatureNet):
        return ImageClassifier(cfg, net)
    return StructuredRainbowModule(cfg, factorize(net, cfg.factconv))
