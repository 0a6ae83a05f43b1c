"""MNIST in torchvision's layout, ``<root>/MNIST/raw/*-ubyte[.gz]``, read by a validating idx reader."""

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch

from common.data.fetch import torchvision_download
from common.errors import UserError

IMAGE_SIZE = 28
IDX_UBYTE = 0x08  # idx type code for unsigned bytes, the only one MNIST uses
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def raw_dir(root: Path) -> Path:
    """The folder torchvision's ``MNIST(root)`` keeps its raw idx files in."""
    return root / "MNIST" / "raw"


def _fix_hint(root: Path) -> str:
    names = ", ".join(name for pair in FILES.values() for name in pair)
    return (
        f"Put torchvision's MNIST raw files ({names}; the .gz versions also work) in {raw_dir(root)}, "
        "or point data.root (or the REPRO_DATA environment variable) at the folder that contains MNIST/, "
        "or set data.download=true to fetch them."
    )


def _bad_file(path: Path, root: Path, problem: str) -> UserError:
    return UserError(f"MNIST file {path} {problem}. {_fix_hint(root)}")


def _locate(root: Path, name: str) -> Path:
    """The uncompressed file if present, else its .gz twin."""
    plain = raw_dir(root) / name
    for path in (plain, plain.with_name(name + ".gz")):
        if path.is_file():
            return path
    raise _bad_file(plain, root, f"is missing (neither {plain.name} nor {plain.name}.gz exists)")


def read_idx(path: Path, root: Path, dims: tuple[int | None, ...]) -> np.ndarray:
    """Read an unsigned-byte idx file, checking magic number, dimensions and exact file length.

    ``dims`` gives the expected shape; ``None`` leaves a dimension (the example count) free.
    """
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise _bad_file(path, root, f"could not be read or decompressed ({exc})") from exc
    ndim = len(dims)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _bad_file(path, root, f"is truncated: {len(data)} bytes, shorter than its {header}-byte header")
    magic = bytes([0, 0, IDX_UBYTE, ndim])
    if data[:4] != magic:
        raise _bad_file(path, root, f"has magic number {data[:4].hex()}, expected {magic.hex()}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if any(want is not None and got != want for got, want in zip(shape, dims, strict=True)):
        raise _bad_file(path, root, f"has dimensions {shape}, expected {dims}")
    expected = header + math.prod(shape)
    if len(data) != expected:
        raise _bad_file(path, root, f"is {len(data)} bytes but its header {shape} implies {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One official split as (float32 images (N, 1, 28, 28) in [0, 1], int64 labels (N,))."""
    images_name, labels_name = FILES[split]
    images_path, labels_path = _locate(root, images_name), _locate(root, labels_name)
    images = read_idx(images_path, root, (None, IMAGE_SIZE, IMAGE_SIZE))
    labels = read_idx(labels_path, root, (None,))
    if len(labels) != len(images):
        problem = f"holds {len(labels)} labels but {images_path} holds {len(images)} images"
        raise _bad_file(labels_path, root, problem)
    if labels.max(initial=0) > 9:
        raise _bad_file(labels_path, root, f"contains label {labels.max()}, outside 0..9")
    x = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255)
    return x, torch.from_numpy(labels.astype(np.int64))


def download(root: Path) -> None:
    """Fetch MNIST into ``root`` with torchvision (a no-op when its files are already there)."""
    torchvision_download("MNIST", root, raw_dir(root), _fix_hint(root))
