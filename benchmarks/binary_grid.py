"""The trainability grid of the binary-surrogates paper trained batched against one network at a time.

The cells are those of `compose("binary_surrogates", "trainability")` (smoke: depths 5..30 × 8 values of σ_m²,
width 64, mnist5k, batch 64, Adam), trained for the same optimizer steps in four ways, one after another:

* ``batched``: the whole grid as one `SurrogateGridModule`, one `trainer.fit` (what `repro run` does).
* ``per-cell``: one `SurrogateGridModule` holding a single cell and one `L.Trainer` per cell, built and fitted
  in turn (Trainer construction timed with the fit: it is part of the cost of that way of working).
* ``batched plain`` / ``per-cell plain``: the same two without Lightning, a hand-written Adam loop over the
  datamodule's own training batches (`train_batches()`, epoch 0, 1, ...: the order the Trainer sees).

Every cell starts from the weights its (seed, depth, σ_m²) gives (grid.cell_generator) and sees the same batches,
so the four end equal up to float rounding: the script prints the largest difference of any final weight mean
and of any cell's training accuracy between ``batched`` and ``per-cell``. Trainers are built as
`common.train.build_trainer` builds them, minus checkpointing, logging, progress bar and validation (the plain
loops have none). The module trains on one intra-op thread (module.py); the plain loops are given the same.

    .venv/bin/python benchmarks/binary_grid.py [--epochs 1] [--overrides key=value ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn
from train_step import load_average, machine_info

from common.config import compose
from common.data import TensorDataModule
from common.linalg import lapack_threads
from common.optim import build_optimizer
from papers.binary_surrogates.analysis import grid_accuracy
from papers.binary_surrogates.grid import SurrogateGrid
from papers.binary_surrogates.module import SurrogateGridModule, grid_cells

warnings.filterwarnings("ignore", message=r".*`limit_val_batches=0`.*")
warnings.filterwarnings("ignore", message=r".*srun.*")


def make_trainer(cfg: DictConfig, root: str) -> L.Trainer:
    t = cfg.trainer
    return L.Trainer(default_root_dir=root, max_epochs=t.max_epochs, accelerator=t.accelerator, devices=t.devices,
                     precision=t.precision, deterministic=t.deterministic, log_every_n_steps=t.log_every_n_steps,
                     limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, num_sanity_val_steps=0, logger=False)


def single_cell(cfg: DictConfig, depth: int, sigma_m2: float) -> DictConfig:
    return OmegaConf.merge(cfg, {"grid": {"depths": [depth], "sigma_m2": [sigma_m2]}})


def fit_lightning(cfg: DictConfig, dm: TensorDataModule, root: str) -> SurrogateGrid:
    module = SurrogateGridModule(cfg, dm)
    make_trainer(cfg, root).fit(module, datamodule=dm)
    return module.grid


def fit_plain(cfg: DictConfig, dm: TensorDataModule, net: nn.Module) -> nn.Module:
    """Adam on the summed per-cell mean cross-entropies, over the training batches of every epoch."""
    optimizer = build_optimizer(cfg.optim, net.parameters(), cfg.trainer.max_epochs)["optimizer"]
    batches = dm.train_batches()
    for epoch in range(cfg.trainer.max_epochs):
        batches.epoch = lambda epoch=epoch: epoch
        for x, y in batches:
            logits = net(x)
            logits = logits if logits.ndim == 3 else logits[None]  # a single network: one cell
            cells = logits.shape[0]
            loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(cells), reduction="none").view(cells, -1)
            optimizer.zero_grad()
            loss.mean(1).sum().backward()
            optimizer.step()
    return net


def max_diff(a: nn.Module, b: nn.Module) -> float:
    """Largest element-wise difference between the parameters of two networks of the same shape."""
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--overrides", nargs="*", default=[], help="config overrides, e.g. model.width=32")
    args = parser.parse_args()
    cfg = compose("binary_surrogates", "trainability", [f"trainer.max_epochs={args.epochs}", *args.overrides])
    dm = TensorDataModule(cfg.data, cfg.seed)
    dm.prepare_data()
    dm.setup()
    cells = grid_cells(cfg)
    steps = args.epochs * len(dm.train_batches())
    print(machine_info())
    print(f"{len(cells)} cells (depths {list(cfg.grid.depths)} × σ_m² {list(cfg.grid.sigma_m2)}), width "
          f"{cfg.model.width}, {steps} steps of batch {cfg.data.batch_size}")
    x, y = dm.train_tensors()
    with tempfile.TemporaryDirectory() as root:
        print(f"load average {load_average():.2f}: batched")
        batched_s, grid = timed(lambda: fit_lightning(cfg, dm, root))
        print(f"load average {load_average():.2f}: per-cell")
        per_cell_s, singles = timed(lambda: [fit_lightning(single_cell(cfg, c.depth, c.sigma_m2), dm, root)
                                             for c in grid.cells])
    with lapack_threads(x):
        print(f"load average {load_average():.2f}: batched plain")
        plain_grid = SurrogateGridModule(cfg, dm).grid
        batched_plain_s, _ = timed(lambda: fit_plain(cfg, dm, plain_grid))
        print(f"load average {load_average():.2f}: per-cell plain")
        fresh = SurrogateGridModule(cfg, dm).grid
        per_cell_plain_s, _ = timed(lambda: [fit_plain(cfg, dm, fresh.cell_network(i)) for i in range(len(cells))])
        weight_diff = max(max_diff(grid.cell_network(i), single.cell_network(0)) for i, single in enumerate(singles))
        acc_batched = grid_accuracy(grid, x, y, cfg.data.eval_batch_size)
        acc_single = torch.cat([grid_accuracy(single, x, y, cfg.data.eval_batch_size) for single in singles])
        plain_diff = (grid_accuracy(plain_grid, x, y, cfg.data.eval_batch_size) - acc_batched).abs().max().item()
    print("\n| way | seconds | per step | vs batched |\n|---|---:|---:|---:|")
    for name, seconds in (("batched (one Trainer)", batched_s), ("per-cell (one Trainer per cell)", per_cell_s),
                          ("batched plain", batched_plain_s), ("per-cell plain", per_cell_plain_s)):
        print(f"| {name} | {seconds:.1f} | {seconds / steps * 1000:.0f} ms | {seconds / batched_s:.1f}× |")
    print(f"\nper-cell / batched: {per_cell_s / batched_s:.1f}×; per-cell plain / batched plain: "
          f"{per_cell_plain_s / batched_plain_s:.1f}×")
    print(f"largest difference, batched vs per-cell: weights {weight_diff:.2e}, training accuracy "
          f"{(acc_batched - acc_single).abs().max().item():.4f} (mean {acc_batched.mean().item():.4f}); "
          f"batched plain vs batched: accuracy {plain_diff:.4f}")


if __name__ == "__main__":
    main()
