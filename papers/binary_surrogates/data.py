"""The shared image datamodule on a fixed fraction of its training split (the paper trains on 50 % of MNIST)."""

from __future__ import annotations

import dataclasses

from omegaconf import DictConfig

from common.data import TensorDataModule


class FractionDataModule(TensorDataModule):
    """`TensorDataModule(cfg.data)` whose training split keeps its first `cfg.train_fraction` (at least one
    example). The split is already in a random order (common.data.sources.load_splits), so this is a random
    subset, the same for every run with the same `data.split_seed`. A fraction rather than `data.limit_train`
    so that the setting holds for any dataset size (the paper's 50 % of MNIST, or a folder of test files)."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__(cfg.data, cfg.seed)
        self.fraction = cfg.train_fraction

    def _load(self) -> None:
        if self._splits is None:
            super()._load()
            train = self._splits.train
            keep = max(1, round(len(train) * self.fraction))
            self._splits = dataclasses.replace(self._splits, train=train.take(slice(None, keep)))
