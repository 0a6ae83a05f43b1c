"""What Alleman et al. (2024) claim that the suite measures, and which runs measure it.

The claims concern low-dimensional targets (k = 1) at the isotropic end of the knob (c = c_max): Tanh minus
ReLU, paired by seed (same initial weights), measured as a z-score (mean gap / its standard error over seeds):
"higher" means z ≥ 2, "lower" z ≤ −2. The gap along the whole knob and for k = d is in each run's
geometry.json and figure, and in the README.
"""

from __future__ import annotations

from pathlib import Path

from common.claims import Claim, Expectation
from common.registry import RunPlan

TASKS = ((3, 1), (3, 3), (5, 1), (5, 5))
SOURCE = "abstract; Figs 2-3"
DIRECTION = {"target_alignment": ("higher", ">=", 2.0), "input_alignment": ("lower", "<=", -2.0),
             "ccgp": ("higher", ">=", 2.0), "parallelism": ("higher", ">=", 2.0)}

CLAIMS: tuple[Claim, ...] = tuple(
    Claim(f"tanh_{word}_{metric}_d{d}k1", f"d = {d}, k = 1, c = c_max: Tanh has {word} {metric.replace('_', ' ')} "
          "than ReLU (z-score of the paired gap)", SOURCE, f"d{d}k1_gap_z_{metric}_cmax",
          {"smoke": Expectation(op, value), "paper": Expectation(op, value)})
    for d in (3, 5) for metric, (word, op, value) in DIRECTION.items())


def plan(scale: str) -> list[RunPlan]:
    extra = ("scale=paper",) if scale == "paper" else ()
    return [RunPlan("sweep", (*extra, f"task.d={d}", f"task.k={k}")) for d, k in TASKS]


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Each run's metrics carry their task in their names (d3k1_...): merge them."""
    return {k: v for metrics in results.values() for k, v in metrics.items()}
