"""TensorDataModule: a whole dataset held as tensors on the training device, batched without workers."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from omegaconf import DictConfig
from torch import Tensor

from common.data.batches import TensorBatches
from common.data.sources import Split, Splits, get_source, load_splits


class TensorDataModule(L.LightningDataModule):
    """Train / val / test splits of one dataset as normalised float32 tensors (N, C, H, W) and int64 labels.

    Lifecycle: ``prepare_data()`` downloads (only with ``data.download=true``) and then reads, splits and
    normalises the data on the CPU, so a missing or corrupt dataset fails there; ``setup()`` does the
    reading itself on processes where ``prepare_data()`` did not run (Lightning runs it on one process
    per node), then moves the tensors to ``trainer.strategy.root_device`` (CPU when no trainer is
    attached). Both are cheap after the first call. Without a trainer, call ``setup()`` by hand.

    Loaders are ``TensorBatches``. Training order and augmentation depend only on (seed, epoch), with the
    epoch read from ``trainer.current_epoch`` when a pass starts (0 without a trainer). Under DDP every
    split, val and test included, is sharded by rank into equal shares, so up to ``world_size - 1``
    examples per split are skipped; ``train_tensors()`` / ``test_tensors()`` are never sharded.
    """

    def __init__(self, data_cfg: DictConfig, seed: int) -> None:
        super().__init__()
        self.cfg = data_cfg
        self.seed = seed
        self.source = get_source(data_cfg.name)
        self._splits: Splits | None = None

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one example as a model sees it, or (C*H*W,) with ``data.flatten``."""
        channels, height, width = self.source.shape
        shape = (1 if self.cfg.grayscale else channels, height, width)
        return (shape[0] * height * width,) if self.cfg.flatten else shape

    def prepare_data(self) -> None:
        if self.cfg.download and self.source.download is not None:
            self.source.download(Path(str(self.cfg.root)).expanduser())
        self._load()

    def setup(self, stage: str | None = None) -> None:
        """Load the splits if not yet loaded, and make sure they sit on the trainer's device."""
        self._load()
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self._splits = self._loaded().to(device)

    def train_tensors(self) -> tuple[Tensor, Tensor]:
        """The whole (unsharded, unaugmented, unshuffled) train split as (x, y) on the current device."""
        return self._tensors(self._loaded().train)

    def val_tensors(self) -> tuple[Tensor, Tensor]:
        """The whole (unsharded) validation split as (x, y) on the current device."""
        return self._tensors(self._loaded().val)

    def test_tensors(self) -> tuple[Tensor, Tensor]:
        """The whole (unsharded) test split as (x, y) on the current device."""
        return self._tensors(self._loaded().test)

    def train_dataloader(self) -> TensorBatches:
        return self.train_batches()

    def train_batches(self, labels: Tensor | None = None) -> TensorBatches:
        """The training loader; with ``labels`` (one per training example, on the data's device) the same
        batches of x, in the same order and with the same augmentation, carry those labels instead (e.g. a
        second network trained on shuffled labels side by side)."""
        train = self._loaded().train
        if labels is not None:
            if labels.shape != train.y.shape:
                raise ValueError(f"labels must hold one label per training example: {tuple(labels.shape)} "
                                 f"vs {tuple(train.y.shape)}")
            train = Split(train.x, labels.to(train.y.device))
        return self._batches(
            train,
            self.cfg.batch_size,
            seed=self.seed,
            augment_fill=self._loaded().fill if self.cfg.augment else None,
        )

    def val_dataloader(self) -> TensorBatches:
        return self._batches(self._loaded().val, self.cfg.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        return self._batches(self._loaded().test, self.cfg.eval_batch_size)

    def _load(self) -> None:
        if self._splits is None:
            self._splits = load_splits(self.source, self.cfg)

    def _tensors(self, split: Split) -> tuple[Tensor, Tensor]:
        return (split.x.flatten(1) if self.cfg.flatten else split.x), split.y

    def _loaded(self) -> Splits:
        if self._splits is None:
            raise RuntimeError("TensorDataModule.setup() must run before its data is used")
        return self._splits

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _batches(
        self, split: Split, batch_size: int, seed: int | None = None, augment_fill: Tensor | None = None
    ) -> TensorBatches:
        trainer = self.trainer
        rank, world_size = (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)
        if len(split) % world_size:
            rank_zero_warn(
                f"{len(split) % world_size} of {len(split)} examples are skipped each pass so that the "
                f"{world_size} DDP ranks get equal shares."
            )
        return TensorBatches(
            split.x,
            split.y,
            batch_size,
            rank=rank,
            world_size=world_size,
            seed=seed,
            epoch=self._epoch,
            augment_fill=augment_fill,
            flatten=self.cfg.flatten,
        )
