"""The batched task-geometry sweep against one model per cell: same cells, same batches, same steps.

Cells = nonlinearities × knob values × seeds of `task_geometry/sweep`. `batched` trains them as one
`StackedNets` in one Lightning Trainer (what `repro run task_geometry/sweep` does); `per-cell` trains each
cell alone, one Trainer per network, from the same initial weights on the same batches (the task's samples
do not depend on how many knob values are built; the batch order comes from the top-level seed). Reports both
wall times, their ratio and the largest difference between the final weights of a cell in the two.

    .venv/bin/python benchmarks/geometry_sweep.py                  # d=3, k=1: 2 nonlinearities x 6 knobs x 3 seeds
    .venv/bin/python benchmarks/geometry_sweep.py --epochs 5 --seeds 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import lightning as L
import torch

from common.config import compose
from common.registry import discover
from papers.task_geometry.module import GeometrySweepModule
from papers.task_geometry.tasks import TaskDataModule


def fit(overrides: list[str]) -> tuple[GeometrySweepModule, float]:
    cfg = compose("task_geometry", "sweep", overrides)
    data = TaskDataModule(cfg)
    module = GeometrySweepModule(cfg, data)
    trainer = L.Trainer(max_epochs=cfg.trainer.max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, deterministic=True)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    return module, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--knobs", type=int, default=6)
    parser.add_argument("--activations", default="tanh,relu")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    discover()
    activations = args.activations.split(",")
    common = [f"trainer.max_epochs={args.epochs}"]
    batched, t_batched = fit([*common, f"sweep.seeds={args.seeds}", f"task.num_knobs={args.knobs}",
                              f"sweep.activations=[{args.activations}]"])
    knobs = batched.knobs
    t_cells, worst = 0.0, 0.0
    for a in activations:
        for k, c in enumerate(knobs):
            for s in range(args.seeds):
                cell, t = fit([*common, "sweep.seeds=1", f"sweep.first_seed={s}", f"task.knobs=[{c}]",
                               f"sweep.activations=[{a}]"])
                t_cells += t
                worst = max(worst, (cell.net.w[0] - batched.net.w[batched.net.index(a, k, s)]).abs().max().item())
    cells = len(activations) * len(knobs) * args.seeds
    print(f"{platform.node()} | {os.cpu_count()} CPUs | torch {torch.__version__} | {time.strftime('%Y-%m-%d')}")
    print(f"{cells} cells, {args.epochs} epochs: batched {t_batched:.2f} s, per-cell {t_cells:.2f} s, "
          f"ratio {t_cells / t_batched:.1f}x, largest final-weight difference {worst:.2e}")


if __name__ == "__main__":
    main()
