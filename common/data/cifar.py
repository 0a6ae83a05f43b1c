"""CIFAR-10 and CIFAR-100 in torchvision's layout (python pickles), read and validated.

    CIFAR-10:  <root>/cifar-10-batches-py/{data_batch_1..5, test_batch}, labels under ``labels`` (0..9)
    CIFAR-100: <root>/cifar-100-python/{train, test},                    labels under ``fine_labels`` (0..99)

torchvision's own ``CIFAR10`` / ``CIFAR100`` classes md5-check the full real files, so they cannot load small test
fixtures; this reader checks structure instead (a dict with ``data`` uint8 (N, 3072) and N labels in range).
"""

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.data.fetch import torchvision_download
from common.errors import UserError

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its files and labels."""

    title: str  # "CIFAR-10"; also torchvision's class name without the dash
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    num_classes: int


CIFAR10 = CifarLayout("CIFAR-10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                      ("test_batch",), "labels", 10)
CIFAR100 = CifarLayout("CIFAR-100", "cifar-100-python", ("train",), ("test",), "fine_labels", 100)


def _fix_hint(layout: CifarLayout, root: Path) -> str:
    return (
        f"Put the python version of {layout.title} ({', '.join(layout.train_files + layout.test_files)}) in "
        f"{root / layout.folder}, or point data.root (or the REPRO_DATA environment variable) at the folder that "
        f"contains {layout.folder}/, or set data.download=true to fetch it."
    )


def _field(batch: dict[Any, Any], key: str) -> Any:
    """A batch field; the real files unpickle with bytes keys, files pickled by Python 3 may use str keys."""
    return batch.get(key.encode(), batch.get(key))


def read_batch(layout: CifarLayout, path: Path, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled file as (uint8 images (N, 3, 32, 32), int64 labels (N,)), validated."""

    def bad(problem: str) -> UserError:
        return UserError(f"{layout.title} file {path} {problem}. {_fix_hint(layout, root)}")

    if not path.is_file():
        raise bad("is missing")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")  # the files were pickled by Python 2
    except Exception as exc:  # truncated or foreign files fail in many ways inside pickle
        raise bad(f"could not be unpickled ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise bad(f"holds a {type(batch).__name__}, expected a dict with data and {layout.label_key}")
    data, labels = _field(batch, "data"), _field(batch, layout.label_key)
    is_array = isinstance(data, np.ndarray)
    if not (is_array and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        desc = f"{data.dtype} array {data.shape}" if is_array else type(data).__name__
        raise bad(f"has data {desc}, expected a uint8 array (N, {PIXELS})")
    if labels is None or len(labels) != len(data):
        count = f"no {layout.label_key}" if labels is None else f"{len(labels)} labels"
        raise bad(f"has {count} for {len(data)} images")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise bad(f"has labels in {labels.min()}..{labels.max()}, expected 0..{layout.num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def read_split(layout: CifarLayout, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The official train or test split as (float32 images (N, 3, 32, 32) in [0, 1], int64 labels (N,))."""
    names = layout.train_files if split == "train" else layout.test_files
    parts = [read_batch(layout, root / layout.folder / name, root) for name in names]
    x = torch.from_numpy(np.concatenate([images for images, _ in parts])).float().div_(255)
    return x, torch.from_numpy(np.concatenate([labels for _, labels in parts]))


def download(layout: CifarLayout, root: Path) -> None:
    """Fetch the dataset into ``root`` with torchvision (a no-op when verified files are already there)."""
    torchvision_download(layout.title.replace("-", ""), root, root / layout.folder, _fix_hint(layout, root))
