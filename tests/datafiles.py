"""Writers of tiny dataset files in the real on-disk formats, for tests that must not download anything.

Both follow torchvision's layout under ``root``, so ``data.root=<root>`` points the datamodule at them.
"""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _labels(n: int, rng: np.random.Generator, classes: int = 10) -> np.ndarray:
    """Every class equally often (as far as n allows), shuffled."""
    return rng.permutation(np.arange(n) % classes).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` as a uint8 idx file: magic 00 00 08 ndim, big-endian uint32 dims, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist_idx(root: Path, n_train: int = 64, n_test: int = 32, seed: int = 0, gz: bool = False) -> Path:
    """Write random MNIST-format train / t10k idx files to ``<root>/MNIST/raw``; returns that folder.

    File names are exactly torchvision's (``train-images-idx3-ubyte`` ...), with a ``.gz`` suffix if ``gz``.
    """
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        arrays = {
            f"{prefix}-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            f"{prefix}-labels-idx1-ubyte": _labels(n, rng),
        }
        for name, array in arrays.items():
            data = idx_bytes(array)
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
    return raw


def _cifar_batch(label: str, n: int, rng: np.random.Generator) -> dict[bytes, object]:
    return {
        b"batch_label": label.encode(),
        b"labels": [int(c) for c in _labels(n, rng)],
        b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }


def write_cifar10_batches(root: Path, n_per_batch: int = 20, seed: int = 0) -> Path:
    """Write random CIFAR-10 python-format pickles to ``<root>/cifar-10-batches-py``; returns that folder.

    Five ``data_batch_i`` and one ``test_batch`` of ``n_per_batch`` images each, dicts with the real bytes
    keys (``b"data"`` uint8 (N, 3072), ``b"labels"`` list of ints, ...), plus ``batches.meta``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = {f"data_batch_{i}": f"training batch {i} of 5" for i in range(1, 6)}
    batches["test_batch"] = "testing batch 1 of 1"
    for name, label in batches.items():
        with (folder / name).open("wb") as f:
            pickle.dump(_cifar_batch(label, n_per_batch, rng), f)
    meta = {
        b"label_names": [c.encode() for c in CIFAR10_CLASSES],
        b"num_cases_per_batch": n_per_batch,
        b"num_vis": 3 * 32 * 32,
    }
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump(meta, f)
    return folder


def write_cifar100_files(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """Write random CIFAR-100 python-format pickles to ``<root>/cifar-100-python``; returns that folder.

    ``train`` and ``test`` dicts with the real bytes keys (``b"data"`` uint8 (N, 3072), ``b"fine_labels"`` in
    0..99, ``b"coarse_labels"`` in 0..19, ...), plus ``meta``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("train", n_train), ("test", n_test)):
        fine = [int(c) for c in _labels(n, rng, classes=100)]
        batch = {
            b"batch_label": f"{name}ing batch 1 of 1".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [c // 5 for c in fine],
            b"data": rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)],
        }
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)
    meta = {b"fine_label_names": [f"class_{c}".encode() for c in range(100)],
            b"coarse_label_names": [f"superclass_{c}".encode() for c in range(20)]}
    with (folder / "meta").open("wb") as f:
        pickle.dump(meta, f)
    return folder
