"""The dataset registry, and how a ``data`` config becomes normalised train / val / test tensors."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from common.data import cifar, mnist, small
from common.errors import UserError

Examples = tuple[Tensor, Tensor]  # float32 images (N, C, H, W) in [0, 1], int64 labels (N,)

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
# Fixed rather than per-split so that they do not move with split_seed / val_size: the mean and std of
# all 1,797 scikit-learn digits scaled to [0, 1].
DIGITS_MEAN, DIGITS_STD = (0.3053,), (0.3760,)
# The rainbow paper normalises CIFAR-10 with the ImageNet statistics.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# data.grayscale: ITU-R BT.601 luminance weights (what PIL's "L" mode uses).
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Source:
    """What is known about a dataset before reading it, and how to read and download it."""

    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    read_train: Callable[[Path], Examples]
    read_test: Callable[[Path], Examples] | None  # None: no official test split, hold one out of train
    download: Callable[[Path], None] | None  # None: ships with an installed package
    num_classes: int = 10


def _cifar_source(layout: cifar.CifarLayout) -> Source:
    """CIFAR-10 / CIFAR-100, both normalised with the ImageNet statistics (the rainbow paper's choice)."""
    return Source(
        (3, 32, 32),
        IMAGENET_MEAN,
        IMAGENET_STD,
        lambda root: cifar.read_split(layout, root, "train"),
        lambda root: cifar.read_split(layout, root, "test"),
        lambda root: cifar.download(layout, root),
        layout.num_classes,
    )


SOURCES: dict[str, Source] = {
    "mnist5k": Source((1, 28, 28), MNIST_MEAN, MNIST_STD, lambda _root: small.read_mnist5k(), None, None),
    "digits": Source((1, 8, 8), DIGITS_MEAN, DIGITS_STD, lambda _root: small.read_digits(), None, None),
    "mnist": Source(
        (1, 28, 28),
        MNIST_MEAN,
        MNIST_STD,
        lambda root: mnist.read_split(root, "train"),
        lambda root: mnist.read_split(root, "test"),
        mnist.download,
    ),
    "cifar10": _cifar_source(cifar.CIFAR10),
    "cifar100": _cifar_source(cifar.CIFAR100),
}


def get_source(name: str) -> Source:
    """The registered dataset called ``name``."""
    if name not in SOURCES:
        raise UserError(f"Unknown dataset data.name={name!r}. Set data.name to one of: {', '.join(SOURCES)}.")
    return SOURCES[name]


@dataclass(frozen=True)
class Split:
    """One split: normalised float32 images (N, C, H, W) and int64 labels (N,)."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: Tensor | slice) -> "Split":
        return Split(self.x[index], self.y[index])

    def to(self, device: torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Splits:
    """The three splits, plus ``fill``: the (C,) value of a black pixel after normalisation (crop padding)."""

    train: Split
    val: Split
    test: Split
    fill: Tensor

    def to(self, device: torch.device) -> "Splits":
        return Splits(self.train.to(device), self.val.to(device), self.test.to(device), self.fill.to(device))


def normalise(x: Tensor, source: Source, grayscale: bool) -> Tensor:
    """Standardise [0, 1] images per channel (in place), then collapse RGB to luminance if asked.

    ``grayscale`` is a no-op on one-channel datasets, which already are.
    """
    x.sub_(torch.tensor(source.mean).view(1, -1, 1, 1)).div_(torch.tensor(source.std).view(1, -1, 1, 1))
    if grayscale and x.shape[1] == 3:
        # einsum avoids a full-size temporary, which matters for 50,000 CIFAR images
        return torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA)).unsqueeze(1)
    return x


def _check_sizes(cfg: DictConfig, n: int, holds_out_test: bool) -> None:
    held = {"data.val_size": cfg.val_size} | ({"data.test_size": cfg.test_size} if holds_out_test else {})
    for key, size in held.items():
        if not isinstance(size, int) or size < 0:
            raise UserError(f"{key}={size!r} must be a non-negative integer. Fix it in the config.")
    if sum(held.values()) >= n:
        sizes = " + ".join(f"{key}={size}" for key, size in held.items())
        raise UserError(
            f"{sizes} holds out {sum(held.values())} of the {n} training examples of data.name={cfg.name}, "
            "leaving none to train on. Lower them."
        )
    per_class = cfg.per_class
    if per_class is not None and (not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1):
        raise UserError(f"data.per_class={per_class!r} must be null or a positive integer. Fix it in the config.")
    if per_class is not None and cfg.limit_train is not None:
        raise UserError(f"data.per_class={per_class} and data.limit_train={cfg.limit_train} both limit the "
                        "training split: set one of them (the other to null).")
    left, limit = n - sum(held.values()), cfg.limit_train
    count = isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= left
    if limit is not None and not (count or (isinstance(limit, float) and 0 < limit <= 1)):
        raise UserError(
            f"data.limit_train={limit!r} must be null, an integer in 1..{left} (the training examples "
            f"of data.name={cfg.name} left after the val/test split) or a fraction in (0, 1]. Fix it in the config."
        )


def first_per_class(y: Tensor, count: int | None, num_classes: int, name: str) -> Tensor:
    """Indices (in order) of the first `count` examples of every class in labels `y`; all of them for None.

    `data.per_class` (e.g. the feature table's "CIFAR-10, 50 images per class" column; its type is checked with
    the other sizes, before any data is read). A class with fewer than `count` examples is an error: the split
    would no longer be balanced.
    """
    if count is None:
        return torch.arange(len(y))
    have = torch.bincount(y, minlength=num_classes)
    if have.min() < count:
        short = int(have.argmin())
        raise UserError(f"data.per_class={count} asks for {count} training examples of each class, but class "
                        f"{short} of data.name={name} has only {int(have[short])} after the val/test split. Lower "
                        "data.per_class (or data.val_size).")
    rank = torch.empty_like(y)  # position of each example among those of its class
    for c in range(num_classes):
        members = (y == c).nonzero().flatten()
        rank[members] = torch.arange(len(members))
    return (rank < count).nonzero().flatten()


def kept_examples(limit: int | float | None, n: int) -> int:
    """How many of `n` training examples `data.limit_train` keeps: a count, a fraction (at least one), or all."""
    if limit is None:
        return n
    return limit if isinstance(limit, int) else max(1, round(n * limit))


def load_splits(source: Source, cfg: DictConfig) -> Splits:
    """Read ``source`` from ``cfg.root``, split it with ``cfg.split_seed`` and normalise it, on the CPU.

    Held-out examples come from a fixed permutation of the training pool: test (only when the dataset has
    no official test split) takes the first ``test_size``, val the next ``val_size``, train the rest in
    permuted order, so ``limit_train`` (a count or a fraction) keeps a random, not a class-sorted, subset, and
    ``per_class`` the first N of each class in that order.
    """
    root = Path(str(cfg.root)).expanduser()
    holds_out_test = source.read_test is None
    pool = Split(*source.read_train(root))
    _check_sizes(cfg, len(pool), holds_out_test)
    pool = Split(normalise(pool.x, source, cfg.grayscale), pool.y)
    perm = torch.randperm(len(pool), generator=torch.Generator().manual_seed(cfg.split_seed))
    if holds_out_test:
        test, perm = pool.take(perm[: cfg.test_size]), perm[cfg.test_size :]
    else:
        x, y = source.read_test(root)
        test = Split(normalise(x, source, cfg.grayscale), y)
    train = pool.take(perm[cfg.val_size :])
    train = train.take(first_per_class(train.y, cfg.per_class, source.num_classes, cfg.name))
    train = train.take(slice(None, kept_examples(cfg.limit_train, len(train))))
    fill = normalise(torch.zeros(1, source.shape[0], 1, 1), source, cfg.grayscale).flatten()
    return Splits(train=train, val=pool.take(perm[: cfg.val_size]), test=test, fill=fill)
