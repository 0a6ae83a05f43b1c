"""CIFAR-10 in torchvision's layout, ``<root>/cifar-10-batches-py/`` python pickles, read and validated.

torchvision's own ``CIFAR10`` class md5-checks the full real files, so it cannot load small test fixtures;
this reader checks structure instead (dict with ``data`` uint8 (N, 3072) and ``labels`` of length N in 0..9).
"""

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.data.fetch import torchvision_download
from common.errors import UserError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
PIXELS = 3 * 32 * 32


def _fix_hint(root: Path) -> str:
    return (
        f"Put the python version of CIFAR-10 ({', '.join(TRAIN_FILES + TEST_FILES)}) in {root / FOLDER}, "
        f"or point data.root (or the REPRO_DATA environment variable) at the folder that contains {FOLDER}/, "
        "or set data.download=true to fetch it."
    )


def _bad_file(path: Path, root: Path, problem: str) -> UserError:
    return UserError(f"CIFAR-10 file {path} {problem}. {_fix_hint(root)}")


def _field(batch: dict[Any, Any], key: str) -> Any:
    """A batch field; the real files unpickle with bytes keys, files pickled by Python 3 may use str keys."""
    return batch.get(key.encode(), batch.get(key))


def read_batch(path: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as (uint8 images (N, 3, 32, 32), int64 labels (N,)), validated."""
    if not path.is_file():
        raise _bad_file(path, root, "is missing")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the files were pickled by Python 2
    except Exception as exc:  # truncated or foreign files fail in many ways inside pickle
        raise _bad_file(path, root, f"could not be unpickled ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise _bad_file(path, root, f"holds a {type(batch).__name__}, expected a dict with data and labels")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    is_array = isinstance(data, np.ndarray)
    if not (is_array and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        desc = f"{data.dtype} array {data.shape}" if is_array else type(data).__name__
        raise _bad_file(path, root, f"has data {desc}, expected a uint8 array (N, {PIXELS})")
    if labels is None or len(labels) != len(data):
        count = "no" if labels is None else len(labels)
        raise _bad_file(path, root, f"has {count} labels for {len(data)} images")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise _bad_file(path, root, f"has labels in {labels.min()}..{labels.max()}, expected 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def read_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The official train or test split as (float32 images (N, 3, 32, 32) in [0, 1], int64 labels (N,))."""
    names = TRAIN_FILES if split == "train" else TEST_FILES
    parts = [read_batch(root / FOLDER / name, root) for name in names]
    x = torch.from_numpy(np.concatenate([images for images, _ in parts])).float().div_(255)
    return x, torch.from_numpy(np.concatenate([labels for _, labels in parts]))


def download(root: Path) -> None:
    """Fetch CIFAR-10 into ``root`` with torchvision (a no-op when verified files are already there)."""
    torchvision_download("CIFAR10", root, root / FOLDER, _fix_hint(root))
