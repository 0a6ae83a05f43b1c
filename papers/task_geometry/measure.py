"""Every claim metric of Alleman et al. (2024) as a measured value with its uncertainty (common.stats), from the
per-seed values each run saves at the largest knob value (outcomes.npz, module.py / cnn.py).

- The Tanh − ReLU gap of a metric: g_s = m_tanh,s − m_relu,s for every seed s (the pair starts from the same
  weights), then its mean over the S seeds, SE = sd(g)/√S, Student t on S − 1 degrees of freedom (`mean_over`).
  Identical gaps on every seed give SE 0 and a zero-width interval (a gap of exactly 0 is then not_reproduced
  against "> 0", never a division by zero); one seed gives an unknown SE (inconclusive). When both nonlinearities
  sit at a bounded metric's ceiling (CCGP = 1) on every seed, the value says so in its note.
- "Every network learned the task": the smallest training accuracy over the Tanh and ReLU networks (all seeds), each
  a proportion of the training labels with its Wilson interval, combined with `min_of` (its interval lies above a
  floor only when every network's does).
A run's metrics are named after its task (`d3k1s1_…`, `rk_d3k1s1_…`, `xor_s0.1_…`), composed from its plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from common.config import compose
from common.outcomes import RunResult
from common.registry import RunPlan
from common.stats import Measured, mean_over, min_of, proportion

PAIRED = "seeds (paired Tanh − ReLU: same initial weights)"
CEILING = "both nonlinearities at the metric's ceiling (1.0) on every seed: it cannot separate them here"


def task_label(task: DictConfig) -> str:
    """The prefix of a run's metrics: its task family, d, k and noise."""
    if task.kind == "xor":
        return f"xor_s{task.noise:g}_"
    return ("rk_" if task.kind == "random_kernel" else "") + f"d{task.d}k{task.k}s{task.noise:g}_"


def paired_gap(tanh: np.ndarray, relu: np.ndarray) -> Measured:
    """Mean over seeds of the per-seed Tanh − ReLU gap (module docstring)."""
    ceiling = bool(np.all(tanh == 1.0) and np.all(relu == 1.0))
    return mean_over(np.asarray(tanh, float) - np.asarray(relu, float), PAIRED, CEILING if ceiling else "")


def sweep_measured(result: RunResult, label: str) -> dict[str, Measured]:
    """{label}gap_{metric}_cmax for every metric the run saved per seed, and {label}train_acc_min_cmax."""
    seeds = result.outcomes
    metrics = {key.removesuffix("_tanh") for key in seeds if key.endswith("_tanh")}
    out = {f"{label}gap_{m}_cmax": paired_gap(seeds[f"{m}_tanh"], seeds[f"{m}_relu"])
           for m in sorted(metrics) if f"{m}_relu" in seeds and m != "train_acc"}
    labels = int(result.metrics["train_labels"])
    networks = [proportion(round(float(a) * labels), labels, "training labels")
                for activation in ("tanh", "relu") for a in seeds[f"train_acc_{activation}"]]
    out[f"{label}train_acc_min_cmax"] = min_of(networks, "Tanh and ReLU networks")
    return out


def cnn_measured(outcomes: Mapping[str, np.ndarray]) -> dict[str, Measured]:
    """cnn_{layer}_gap_{metric}: the paired gaps of the CNN's hidden layers (outcomes `{layer}_{metric}_{act}`)."""
    keys = {key.removesuffix("_tanh") for key in outcomes if key.endswith("_tanh")}
    return {f"cnn_{key.replace('_', '_gap_', 1)}": paired_gap(outcomes[f"{key}_tanh"], outcomes[f"{key}_relu"])
            for key in sorted(keys) if f"{key}_relu" in outcomes}


def measure(results: Mapping[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    for plan, result in results.items():
        task = compose("task_geometry", plan.experiment, list(plan.overrides)).task
        out |= cnn_measured(result.outcomes) if task.kind == "images" else sweep_measured(result, task_label(task))
    return out
