"""A grid of surrogate networks (grid.py) trained as one LightningModule (Stamatescu et al. 2020, experiments).

Every cell minimises its own mean cross-entropy; the loss of the stack is the sum over cells, so with Adam
(element-wise) training the stack is training every cell alone. Logged: train/loss, train/acc, val/acc,
test/acc as means over cells, val/acc_max (no best.ckpt: `run.save_best` is false for the grids). `analyze`
scores every cell on the whole training and test splits, the trainable region against 6ξ_c, and, with
`binary.samples`, the binary networks taken from every cell (analysis.py); it writes `cells.json`, the figures and
`outcomes.npz`: a heat map's training accuracy of every σ_m² column, one value per depth (shallowest first: the
cells are the replicates), or the binary study's per-example test correctness of the surrogate and of each binary
network at every depth (measure.py takes paired differences of them).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf

from common.data import TensorDataModule
from common.errors import UserError
from common.linalg import lapack_threads
from common.optim import build_optimizer
from common.outcomes import save_outcomes
from papers.binary_surrogates.analysis import binary_correct, binary_gaps, column_accuracies, grid_correct, trainability
from papers.binary_surrogates.grid import Cell, SurrogateGrid
from papers.binary_surrogates.plots import plot_binary, plot_heatmap

Tensor = torch.Tensor


def grid_cells(cfg: DictConfig) -> list[Cell]:
    """depths × σ_m² of `cfg.grid`; with trainer.fast_dev_run (a bug check) the two shallowest depths × the first
    and last σ_m², so that the paper's grid is checked without building it."""
    depths, sigmas = sorted(cfg.grid.depths), list(cfg.grid.sigma_m2)
    if cfg.trainer.fast_dev_run:
        depths, sigmas = depths[:2], sorted({sigmas[0], sigmas[-1]})
    return [Cell(d, s) for d in depths for s in sigmas]


class SurrogateGridModule(L.LightningModule):
    def __init__(self, cfg: DictConfig, data: TensorDataModule) -> None:
        super().__init__()
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        (n_in,) = data.input_shape
        m = cfg.model
        if cfg.binary.samples and len(set(cfg.grid.sigma_m2)) > 1:
            raise UserError(f"The binary-network study (binary.samples={list(cfg.binary.samples)}) compares depths at "
                            f"one σ_m²: set grid.sigma_m2 to one value, got {list(cfg.grid.sigma_m2)}.")
        self.grid = SurrogateGrid(grid_cells(cfg), n_in, m.width, data.num_classes, surrogate=m.surrogate,
                                  phi=cfg.theory.phi, sigma_b2=cfg.theory.sigma_b2, weight_map=m.weight_map,
                                  seed=cfg.seed)

    def setup(self, stage: str) -> None:
        """One intra-op thread on a CPU for fit / test (common.linalg.lapack_threads): the grid's many small
        kernels (64 × 64 matmuls per cell, element-wise maps of the weight means) ran 5-10× slower on two threads
        than on one on a busy 2-core machine (0.2 s per step of the smoke grid on one thread, 1.1-2.1 s on two)."""
        self._threads = contextlib.ExitStack()
        self._threads.enter_context(lapack_threads(torch.empty(0, device=self.trainer.strategy.root_device)))

    def teardown(self, stage: str) -> None:
        self._threads.close()

    def _losses(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Per-cell mean cross-entropy and accuracy on a batch: two (cells,)."""
        x, y = batch
        logits = self.grid(x)  # (cells, batch, classes)
        cells = logits.shape[0]
        losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(cells), reduction="none").view(cells, -1).mean(1)
        return losses, (logits.argmax(-1) == y).float().mean(1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        losses, acc = self._losses(batch)
        self.log("train/loss", losses.mean(), on_step=False, on_epoch=True)
        self.log("train/acc", acc.mean(), on_step=False, on_epoch=True)
        return losses.sum()

    def _eval(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        losses, acc = self._losses(batch)
        size = len(batch[1])
        self.log(f"{stage}/loss", losses.mean(), batch_size=size)
        self.log(f"{stage}/acc", acc.mean(), batch_size=size, prog_bar=stage == "val")
        self.log(f"{stage}/acc_max", acc.max(), batch_size=size)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "test")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.cfg.optim, self.grid.parameters(), self.cfg.trainer.max_epochs,
                               int(self.trainer.estimated_stepping_batches))

    def analyze(self, datamodule: TensorDataModule, run_dir: Path) -> dict[str, float]:
        self.grid.eval()
        with lapack_threads(self.grid.readout.theta):
            return self._analyze(datamodule, run_dir)

    def _analyze(self, datamodule: TensorDataModule, run_dir: Path) -> dict[str, float]:
        cfg, cells = self.cfg, self.grid.cells
        size = cfg.data.eval_batch_size
        x_test, y_test = datamodule.test_tensors()
        train_correct = grid_correct(self.grid, *datamodule.train_tensors(), size)  # (cells, N_train)
        test_correct = grid_correct(self.grid, x_test, y_test, size)  # (cells, N_test)
        train_acc, test_acc = train_correct.double().mean(1), test_correct.double().mean(1)
        record: dict[str, Any] = {"depth": [c.depth for c in cells], "sigma_m2": [c.sigma_m2 for c in cells],
                                  "train_acc": train_acc.tolist(), "test_acc": test_acc.tolist()}
        surrogate, phi, sigma_b2 = cfg.model.surrogate, cfg.theory.phi, cfg.theory.sigma_b2
        metrics: dict[str, float] = {"train_examples": float(train_correct.shape[1])}
        outcomes: dict[str, Tensor] = {}
        figures = run_dir / "figures"
        if len({c.sigma_m2 for c in cells}) > 1:  # a heat map: each column's training accuracies, depth by depth
            scores = trainability(cells, train_acc, sigma_b2, surrogate, phi)
            metrics |= {f"{surrogate}_{k}": v for k, v in scores.items()}
            outcomes = {f"{surrogate}_train_sm{s:g}": v for s, v in column_accuracies(cells, train_acc).items()}
            plot_heatmap(record, sigma_b2, surrogate, phi, figures / f"trainability_{surrogate}.png")
        if cfg.binary.samples:  # one σ_m² (checked in __init__): every depth's variants on the same test examples
            samples = list(cfg.binary.samples)
            binary = binary_correct(self.grid, x_test, y_test, samples, cfg.binary.seed, size)
            accuracies = {name: c.double().mean(1) for name, c in binary.items()}
            record |= {name: acc.tolist() for name, acc in accuracies.items()}
            gaps = binary_gaps(record["depth"], test_acc, accuracies, samples)
            metrics |= {f"binary_{k}": v for k, v in gaps.items()}
            outcomes = {f"{name}_L{cell.depth}": row for name, correct in {"surrogate": test_correct, **binary}.items()
                        for cell, row in zip(cells, correct, strict=True)}
            plot_binary(record, figures / "binary_vs_depth.png")
        if outcomes:
            save_outcomes(run_dir, outcomes)
        (run_dir / "cells.json").write_text(json.dumps(record, indent=1))
        return metrics


def build_module(cfg: DictConfig, datamodule: TensorDataModule) -> SurrogateGridModule:
    return SurrogateGridModule(cfg, datamodule)
