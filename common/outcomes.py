"""The replicates behind a run's numbers, `<run_dir>/outcomes.npz`, and what `measure` receives.

Mostly per-example test scores: a study scores every variant it evaluates on the test set example by example
(1 correct / 0 wrong, or the fraction of a variant's samples that got the example right). A claim that compares
two variants of one run on the same test set then uses the paired per-example difference
(`common.stats.paired_difference`), whose SE is several times smaller than that of two independent accuracies.
A study whose replicates are not test examples saves those instead, one value per replicate (the seeds of a
stacked sweep, the cells of a grid, the draws of a synthetic study), named so that `measure` knows which is which;
every array of one file has the same length, in the same order of replicates.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.rundir import write_bytes_atomic

OUTCOMES_FILE = "outcomes.npz"


@dataclass(frozen=True)
class RunResult:
    """What a paper's `measure` gets for each finished run: its final metrics (summary.json) and the per-example
    scores of its variants (outcomes.npz; empty when the run wrote none)."""

    metrics: dict[str, float]
    outcomes: dict[str, np.ndarray] = field(default_factory=dict)


def save_outcomes(run_dir: Path, scores: Mapping[str, torch.Tensor | np.ndarray]) -> None:
    """Write {name: per-replicate value} (float32; one value per test example, or per seed / cell / draw; the same
    replicates in the same order for every name)."""
    arrays = {name: (s.detach().cpu().float().numpy() if isinstance(s, torch.Tensor)
                     else np.asarray(s, dtype=np.float32)).ravel() for name, s in scores.items()}
    sizes = {len(a) for a in arrays.values()}
    if len(sizes) > 1:
        raise ValueError(f"outcomes of one run must hold the same replicates; sizes {sorted(sizes)}")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(run_dir / OUTCOMES_FILE, buffer.getvalue())


def load_outcomes(run_dir: Path) -> dict[str, np.ndarray]:
    """The scores a run saved, or {} when it saved none."""
    path = run_dir / OUTCOMES_FILE
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {name: data[name] for name in data.files}
