"""Mini-batches over tensors that already live on the training device: the DataLoader stand-in.

Everything random (shuffle order, augmentation) comes from one generator seeded by (seed, epoch), so an
epoch's batches depend on nothing but those two numbers: a run resumed at epoch k sees what an
uninterrupted run would have seen.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor


def epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit generator seed that is a pure function of (seed, epoch)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def shard(indices: Tensor, rank: int, world_size: int) -> Tensor:
    """Rank ``rank``'s share of ``indices``: every ``world_size``-th entry, cut so all ranks get equally many.

    Equal shares keep DDP ranks in lock-step (same number of batches); the cost is that up to
    ``world_size - 1`` trailing indices are skipped.
    """
    return indices[rank::world_size][: len(indices) // world_size]


def num_batches(n: int, batch_size: int, world_size: int) -> int:
    """How many batches one rank's shard of ``n`` examples makes, keeping the last partial batch."""
    return -(-(n // world_size) // batch_size)


def random_crop_flip(x: Tensor, fill: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    """Per-example random crop of the ``pad``-padded images and random horizontal flip, batched on device.

    Padding uses ``fill`` (C,), the normalised value of a black pixel, which matches torchvision's
    ``RandomCrop(padding=4)`` applied before ``Normalize``.
    """
    b, c, h, w = x.shape
    device = x.device
    padded = fill.view(1, c, 1, 1).expand(b, c, h + 2 * pad, w + 2 * pad).clone()
    padded[:, :, pad : pad + h, pad : pad + w] = x
    top = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=device)
    flip = torch.rand((b, 1), generator=generator, device=device) < 0.5
    rows = top + torch.arange(h, device=device)
    cols = left + torch.arange(w, device=device)
    cols = torch.where(flip, cols.flip(1), cols)  # a flip is the crop's columns read right to left
    batch = torch.arange(b, device=device).view(b, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


class TensorBatches:
    """A re-iterable of (x, y) batches over device tensors, with ``len()`` = batches per epoch on this rank.

    ``seed=None`` keeps the stored order (evaluation); otherwise each pass draws a fresh permutation from a
    generator seeded by ``epoch_seed(seed, epoch())``, and, if ``augment_fill`` is given, crops and flips
    every batch with the same generator. ``flatten`` turns x into (B, C*H*W) after augmentation.

    ``state_dict()`` / ``load_state_dict()`` (Lightning saves them in every checkpoint) make a pass resumable:
    after a checkpoint taken mid-epoch, the next pass over that epoch starts at the first batch not yet served.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int | None = None,
        epoch: Callable[[], int] | None = None,
        augment_fill: Tensor | None = None,
        flatten: bool = False,
    ) -> None:
        if augment_fill is not None and seed is None:
            raise ValueError("augmentation needs a seed: it draws from the shuffling generator")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.rank, self.world_size = rank, world_size
        self.seed = seed
        self.epoch = epoch
        self.augment_fill = augment_fill
        self.flatten = flatten
        self._served = {"epoch": -1, "batches": 0}  # the current pass: its epoch, batches handed out so far
        self._resume: dict[str, int] | None = None  # a checkpoint's position, applied by the next pass

    def state_dict(self) -> dict[str, int]:
        return dict(self._served)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = dict(state)

    def __len__(self) -> int:
        return num_batches(len(self.y), self.batch_size, self.world_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        # A generator function: nothing below runs until the first next(). Lightning calls iter() on the
        # train loader before it restores `current_epoch` from an end-of-epoch checkpoint, so reading the
        # epoch any earlier would replay the previous epoch's order after a resume.
        device = self.y.device
        epoch = self.epoch() if self.epoch is not None else 0
        generator = None
        if self.seed is None:
            order = torch.arange(len(self.y), device=device)
        else:
            generator = torch.Generator(device=device).manual_seed(epoch_seed(self.seed, epoch))
            order = torch.randperm(len(self.y), generator=generator, device=device)
        resume, self._resume = self._resume, None
        skip = resume["batches"] if resume is not None and resume["epoch"] == epoch else 0
        self._served = {"epoch": epoch, "batches": skip}
        for i, index in enumerate(shard(order, self.rank, self.world_size).split(self.batch_size)):
            if i < skip:
                if self.augment_fill is not None:  # draw as an uninterrupted pass does: later batches stay the same
                    random_crop_flip(self.x[index], self.augment_fill, generator)
                continue
            x = self.x[index]
            if self.augment_fill is not None:
                x = random_crop_flip(x, self.augment_fill, generator)
            self._served["batches"] += 1  # counted before the yield: a checkpoint taken now includes this batch
            yield (x.flatten(1) if self.flatten else x), self.y[index]
