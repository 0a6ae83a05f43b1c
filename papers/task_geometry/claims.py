"""What Alleman et al. (2024) claim that the suite measures, and which runs measure it.

The claims concern low-dimensional targets (k = 1) at the isotropic end of the knob (c = c_max): Tanh minus
ReLU, paired by seed (same initial weights), measured as a z-score (mean gap / its standard error over seeds):
"higher" means z ≥ 2, "lower" z ≤ −2, at the paper's input noise σ = 1. The gap along the whole knob, for k = d
and at other noise levels (σ = 0.5, 2 for d = 3, k = 1), the random-kernel family and the ε-separable XOR sweep,
are in each run's geometry.json and figure, and in the README (measured, no claim declared for them). The
weight-dynamics run (Fig. 1C-D) declares one claim: Tanh weights move along the inter-class axis more than ReLU's.
"""

from __future__ import annotations

from pathlib import Path

from common.claims import Claim, Expectation
from common.registry import RunPlan

TASKS = ((3, 1), (3, 3), (5, 1), (5, 5))
NOISES = (0.5, 2.0)  # besides the paper's σ = 1, for d = 3, k = 1
SOURCE = "abstract; Figs 2-3"
DIRECTION = {"target_alignment": ("higher", ">=", 2.0), "input_alignment": ("lower", "<=", -2.0),
             "ccgp": ("higher", ">=", 2.0), "parallelism": ("higher", ">=", 2.0)}

CLAIMS: tuple[Claim, ...] = tuple(
    Claim(f"tanh_{word}_{metric}_d{d}k1", f"d = {d}, k = 1, c = c_max: Tanh has {word} {metric.replace('_', ' ')} "
          "than ReLU (z-score of the paired gap)", SOURCE, f"d{d}k1s1_gap_z_{metric}_cmax",
          {"smoke": Expectation(op, value), "paper": Expectation(op, value)})
    for d in (3, 5) for metric, (word, op, value) in DIRECTION.items())


CLAIMS += (Claim(
    "tanh_weights_move_along_inter_class_axis",
    "Two bits, one target, isotropic inputs: the input weights of Tanh units move along the inter-class axis, "
    "those of ReLU units more along the intra-class axes (share of the weight change along the inter-class "
    "axis, z-score of the paired Tanh - ReLU gap)", "Fig. 1C-D (learning dynamics in weight space)",
    "d2k1s1_gap_z_inter_fraction_cmax", {"smoke": Expectation(">=", 2.0), "paper": Expectation(">=", 2.0)}),)


def plan(scale: str) -> list[RunPlan]:
    extra = ("scale=paper",) if scale == "paper" else ()
    return ([RunPlan("sweep", (*extra, f"task.d={d}", f"task.k={k}")) for d, k in TASKS]
            + [RunPlan("sweep", (*extra, "task.d=3", "task.k=1", f"task.noise={s}")) for s in NOISES]
            + [RunPlan("sweep", (*extra, "task.kind=random_kernel", "task.d=3", "task.k=1")),
               RunPlan("xor", extra), RunPlan("dynamics", extra)]
            + ([RunPlan("cnn", extra)] if scale == "paper" else []))


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Each run's metrics carry their task in their names (d3k1s1_...): merge them."""
    return {k: v for metrics in results.values() for k, v in metrics.items()}
