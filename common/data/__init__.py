"""Datasets as LightningDataModules whose tensors live on the training device.

``build_datamodule(cfg.data, seed)`` is the entry point; ``DATASETS`` lists the valid ``data.name`` values.
"""

from omegaconf import DictConfig

from common.data.batches import TensorBatches
from common.data.sources import SOURCES
from common.data.tensor_datamodule import TensorDataModule

DATASETS: tuple[str, ...] = tuple(SOURCES)

__all__ = ["DATASETS", "TensorBatches", "TensorDataModule", "build_datamodule"]


def build_datamodule(data_cfg: DictConfig, seed: int) -> TensorDataModule:
    """The datamodule for ``data_cfg.name`` (one of ``DATASETS``; anything else raises UserError).

    Nothing is read until ``prepare_data()`` / ``setup()``; ``seed`` drives the per-epoch shuffle.
    """
    return TensorDataModule(data_cfg, seed)
