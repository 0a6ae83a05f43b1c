"""Every claim metric of Stamatescu et al. (2020) as a measured value with its uncertainty (common.stats), from the
finished runs' metrics and per-example scores (module.py writes them).

- Theory (phase_diagram) and the simulation test: closed forms, SE 0 (`exact`); the simulation's Monte Carlo
  error is inside its Bonferroni-corrected p-value over the (σ_m², layer, q or c) points.
- Trainability: the fraction of cells that train on each side of L = 6ξ_c, k of n cells with Wilson's interval
  (the cells taken as independent trials); the best cell's training accuracy, a proportion of the training
  examples. The best σ_m²: the column b with the highest mean training accuracy over depths; its interval spans
  the σ_m² of every column c not worse than b by a test paired by depth (each cell its own training run, so the
  spread over depths carries training noise): with g_L = acc(L, b) − acc(L, c) over the D depths, c is excluded
  only when mean(g) − t·sd(g)/√D > 0, t the Student quantile on D − 1 degrees of freedom Bonferroni-corrected over
  the other columns (a confidence set, not a t interval: the SE is left unknown).
- Binary networks (one trained surrogate per depth, every variant scored on the same test examples): paired
  per-example differences, SE = sd(a_i − b_i)/√n, a test-set SE that ignores training noise (`ONE_RUN`).
  "Within 5 points at every depth": `max_of` the per-depth gaps; "100 samples beat 5": the per-example gain
  averaged over depths, g_i = mean_L (a_{L,i} − b_{L,i}), whose SE carries the correlation between depths; the
  sign network's gap growth: per example, (surrogate − sign)_deepest − (surrogate − sign)_shallowest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from scipy import stats

from common.outcomes import RunResult
from common.registry import RunPlan
from common.stats import (
    ONE_RUN,
    Measured,
    exact,
    max_of,
    mean_of_scores,
    mean_over,
    min_of,
    paired_difference,
    proportion,
)
from papers.binary_surrogates.theory import SURROGATES

PAIRED = "test examples (paired)"


def measure(results: Mapping[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    out: dict[str, Measured] = {}
    for plan, result in results.items():
        if plan.experiment == "simulation":
            out |= simulation_measured(result.metrics)
        elif plan.experiment == "phase_diagram":
            out |= phase_measured(result.metrics)
        elif plan.experiment == "trainability":
            out |= trainability_measured(result)
        elif plan.experiment == "binary":
            out |= binary_measured(result.outcomes)
    return out


def simulation_measured(m: Mapping[str, float]) -> dict[str, Measured]:
    points = f"points (σ_m², layer, q or c), {int(m['sim_realisations'])} networks each"
    return {"sim_bonferroni_p": exact(m["sim_bonferroni_p"], int(m["sim_points"]), points,
                                      note="a Bonferroni-corrected p-value: the Monte Carlo error is inside the test"),
            "sim_max_abs_t": exact(m["sim_max_abs_t"], int(m["sim_points"]), points)}


def phase_measured(m: Mapping[str, float]) -> dict[str, Measured]:
    return {k: exact(m[k]) for k in ("critical_sigma_m2", "chi1_at_critical", "lrt_critical_fraction",
                                     "ordered_fraction")}


def cell_fraction(trained: int, cells: int) -> Measured:
    """k of n cells (Wilson), or unknown when no cell lies on that side of 6ξ_c."""
    if cells == 0:
        return Measured(math.nan, math.nan, 0, "cells", note="no cell on this side of 6ξ_c")
    return proportion(trained, cells, "cells")


def best_column(columns: Mapping[float, np.ndarray]) -> Measured:
    """The σ_m² whose column has the highest mean training accuracy over depths, with the set of columns not worse
    than it (module docstring) as its interval; `columns`: {σ_m²: (D,) accuracies, the same depths in order}."""
    best = max(columns, key=lambda s: np.mean(columns[s]))
    depths = len(columns[best])
    q = stats.t.ppf(1 - 0.025 / max(len(columns) - 1, 1), depths - 1) if depths > 1 else math.nan
    tied = []
    for s, accuracies in columns.items():
        gap = mean_over(np.asarray(columns[best]) - accuracies, "depths")
        if not gap.value - q * gap.se > 0:  # not surely worse (an unknown SE included)
            tied.append(s)
    return Measured(best, math.nan, len(columns) * depths, f"cells ({len(columns)} σ_m² columns × {depths} depths)",
                    bounds=(min(tied), max(tied)), note=f"argmax over the columns; interval: the σ_m² of the "
                    f"{len(tied)} column(s) not worse than the best by a depth-paired t test (Bonferroni)")


def trainability_measured(result: RunResult) -> dict[str, Measured]:
    m, out = result.metrics, {}
    examples = int(m["train_examples"])
    for s in SURROGATES:
        if f"{s}_cells_within_6xi" not in m:
            continue
        for side in ("within", "beyond"):
            out[f"{s}_trained_{side}_6xi"] = cell_fraction(int(m[f"{s}_trained_cells_{side}_6xi"]),
                                                           int(m[f"{s}_cells_{side}_6xi"]))
        out[f"{s}_train_acc_max"] = proportion(round(m[f"{s}_train_acc_max"] * examples), examples,
                                               "training examples (the best cell)", note=ONE_RUN)
        prefix = f"{s}_train_sm"
        columns = {float(k.removeprefix(prefix)): v for k, v in result.outcomes.items() if k.startswith(prefix)}
        if columns:
            out[f"{s}_best_sigma_m2"] = best_column(columns)
    return out


def binary_measured(outcomes: Mapping[str, np.ndarray]) -> dict[str, Measured]:
    """Outcomes `{variant}_L{depth}` (variant: surrogate, stochastic{K}, deterministic) -> the binary claims'
    metrics and the per-depth values behind them."""
    by_depth: dict[int, dict[str, np.ndarray]] = {}
    for key, scores in outcomes.items():
        name, depth = key.rsplit("_L", 1)
        by_depth.setdefault(int(depth), {})[name] = np.asarray(scores, dtype=float)
    depths = sorted(by_depth)
    samples = sorted(int(n.removeprefix("stochastic")) for n in by_depth[depths[0]] if n.startswith("stochastic"))
    few, most = f"stochastic{samples[0]}", f"stochastic{samples[-1]}"
    out: dict[str, Measured] = {}
    for d in depths:
        v = by_depth[d]
        out[f"binary_surrogate_acc_L{d}"] = mean_of_scores(v["surrogate"], note=ONE_RUN)
        out[f"binary_gap_{most}_L{d}"] = paired_difference(v["surrogate"], v[most], PAIRED, ONE_RUN)
        out[f"binary_gain_{most}_over_{few}_L{d}"] = paired_difference(v[most], v[few], PAIRED, ONE_RUN)
    out["binary_gap_stochastic_most_max"] = max_of([out[f"binary_gap_{most}_L{d}"] for d in depths], "depths")
    out["binary_surrogate_acc_min"] = min_of([out[f"binary_surrogate_acc_L{d}"] for d in depths], "depths")
    gain = np.mean([by_depth[d][most] - by_depth[d][few] for d in depths], axis=0)
    out["binary_gain_most_over_fewest"] = mean_of_scores(gain, f"{PAIRED}, averaged over {len(depths)} depths",
                                                         ONE_RUN)
    shallow, deep = by_depth[depths[0]], by_depth[depths[-1]]
    growth = (deep["surrogate"] - deep["deterministic"]) - (shallow["surrogate"] - shallow["deterministic"])
    out["binary_gap_deterministic_growth"] = mean_of_scores(growth, f"{PAIRED}, L = {depths[0]} and {depths[-1]}",
                                                            ONE_RUN)
    out["binary_deterministic_acc_shallowest"] = mean_of_scores(shallow["deterministic"], note=ONE_RUN)
    return out
