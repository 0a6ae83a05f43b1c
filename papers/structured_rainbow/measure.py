"""Claim metrics of White et al. (2024) from the finished runs, each a `common.stats.Measured`.

FactConv runs (cnn, resnet) are grouped into networks (experiment, factor ablation, width); the seeds of a network
are its replicates. A quantity of a network is a per-example score on the shared test set (`outcomes.npz`: 1/0 for
the trained net, the fraction of noise draws right for a resampled variant), or the paired difference of two such
scores; over k >= 2 seeds its value is the mean of the seeds' test-set means, its SE the spread over seeds plus the
shared test set's own noise, Student t (`common.stats.over_seeds`); with one seed, the mean ± sd/√n over the n test
examples, noted ONE_RUN (a lower bound).

Feature-table cells (features, column) are the mean over their trials (seeds) of `test/acc`, SE = sd/√k; a
difference of two cells is `common.stats.difference` (independent runs, Welch's df); "every row beats" is the
conservative `min_of` over rows (and datasets).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.outcomes import RunResult
from common.plotting import plt
from common.registry import RunPlan
from common.stats import Measured, difference, max_of, mean_of_scores, mean_over, min_of, over_seeds
from papers.structured_rainbow.claims import ABLATIONS, COLUMNS, FEW_IMAGES, PAPER_COLUMN, TABLE
from papers.structured_rainbow.features import FEATURES  # the rows with random kernels

Network = tuple[str, str, str]  # (experiment, ablation, width scale or "default")


def _value(p: RunPlan, key: str, default: str) -> str:
    return next((o.split("=", 1)[1] for o in p.overrides if o.startswith(f"{key}=")), default)


def seed_of(p: RunPlan) -> int:
    return int(_value(p, "seed", "0"))


def ablation_of(p: RunPlan) -> str:
    """The factor ablation a FactConv run belongs to ("learned" for the width sweep)."""
    rest = tuple(o for o in p.overrides if not o.startswith(("scale=", "model.width_scale=", "seed=")))
    return next(name for name, overrides in ABLATIONS.items() if overrides == rest)


def network_of(p: RunPlan) -> Network:
    return p.experiment, ablation_of(p), _value(p, "model.width_scale", "default")


def label(net: Network) -> str:
    experiment, ablation, width = net
    return f"{experiment}_{ablation}" + ("" if width == "default" else f"_w{width}")


def best_single_gap(o: dict[str, np.ndarray]) -> np.ndarray:
    """Per-example both − the better (by accuracy) of wa and aca, in one run."""
    best = max(("wa", "aca"), key=lambda v: o[v].mean())
    return o["both"] - o[best]


def measure_factconv(results: dict[RunPlan, RunResult]) -> dict[str, Measured]:
    """The ablation and resampling metrics (module doc), plus each network's trained and resampled accuracy."""
    networks: dict[Network, dict[int, RunResult]] = defaultdict(dict)
    for p, r in results.items():
        networks[network_of(p)][seed_of(p)] = r

    def per_network(score: Callable[[dict[str, np.ndarray]], np.ndarray]) -> dict[Network, Measured]:
        """`score` (per example, from one run's variants) of every network, over its seeds."""
        return {net: over_seeds([score(r.outcomes) for r in runs.values()]) for net, runs in networks.items()}

    out = {f"{label(net)}_trained_acc": m for net, m in per_network(lambda o: o["trained"]).items()}
    out |= {f"{label(net)}_both_acc": m for net, m in per_network(lambda o: o["both"]).items()}
    out["min_trained_acc"] = min_of([mean_of_scores(r.outcomes["trained"]) for r in results.values()], "runs")
    out["max_none_acc"] = max_of(list(per_network(lambda o: o["none"]).values()), "networks")
    out["min_retrained_minus_both"] = min_of(list(per_network(lambda o: o["retrained"] - o["both"]).values()),
                                             "networks")
    learned = [m for net, m in per_network(best_single_gap).items() if net[1] == "learned"]
    if learned:
        out["both_minus_best_single"] = min_of(learned, "networks")
    frozen = {net[1]: runs for net, runs in networks.items() if net[1] in ("spatial_frozen", "channel_frozen")}
    if len(frozen) == 2:
        seeds = sorted(frozen["spatial_frozen"].keys() & frozen["channel_frozen"].keys())
        out["spatial_frozen_minus_channel_frozen"] = over_seeds(
            [frozen["spatial_frozen"][s].outcomes["trained"] - frozen["channel_frozen"][s].outcomes["trained"]
             for s in seeds])
    out["min_wa_cosine_narrow"] = min_of([_wa_cosine(r.metrics) for r in results.values()], "runs")
    return out


def _wa_cosine(m: dict[str, float]) -> Measured:
    """A run's mean WA cosine over its layers with C_out < C_in k² and its draws, SE = sd/√count."""
    count = int(m["resample/wa_cosine_narrow_count"])
    return Measured(m["resample/wa_cosine_narrow_mean"], m["resample/wa_cosine_narrow_std"] / max(count, 1) ** 0.5,
                    count, "layers × draws (C_out < C_in k²)")


def _relative(m: Measured, reference: float) -> Measured:
    """m / reference (a ratio to the paper's accuracy): value and SE scaled alike."""
    return replace(m, value=m.value / reference, se=m.se / reference)


def _table_cell(p: RunPlan, scale: str) -> tuple[str, str]:
    """(features, column) of a feature-table run: the column whose overrides the run has (the most specific)."""
    kind = _value(p, "model.name", "").removeprefix("rf_")
    matching = [(len(o), c) for c, o in COLUMNS[scale].items() if set(o) <= set(p.overrides)]
    return kind, max(matching)[1]


def measure_table(results: dict[RunPlan, RunResult], scale: str) -> dict[str, Measured]:
    """Every (features, column) cell: mean test accuracy over its trials; the table's orderings as differences of
    cells; the feature nets' accuracy relative to the paper's (the check that they trained)."""
    accs: dict[tuple[str, str], list[float]] = defaultdict(list)
    for p, r in results.items():
        accs[_table_cell(p, scale)].append(r.metrics["test/acc"])
    cells = {cell: mean_over(a, "seeds") for cell, a in accs.items()}
    out = {f"rf_{kind}_{data}_acc": m for (kind, data), m in cells.items()}
    if not cells:
        return out
    out["min_feature_acc_over_paper"] = min_of([_relative(m, TABLE[kind][PAPER_COLUMN[data]][0])
                                                for (kind, data), m in cells.items()], "cells")
    rows = [(kind, data) for kind, data in cells if kind in FEATURES and ("scattering", data) in cells]
    full = {(kind, data): difference(cells[kind, data], cells["scattering", data])
            for kind, data in rows if data not in FEW_IMAGES}
    few = {(kind, data): difference(cells["scattering", data], cells[kind, data])
           for kind, data in rows if data in FEW_IMAGES}
    out |= {f"rf_{kind}_minus_scattering_{data}": m for (kind, data), m in full.items()}
    out |= {f"scattering_minus_rf_{kind}_{data}": m for (kind, data), m in few.items()}
    if full:
        out["min_rf_minus_scattering"] = min_of(list(full.values()), "rows × datasets")
    if few:
        out["min_scattering_minus_rf_few"] = min_of(list(few.values()), "rows")
    if {("v1", "cifar10"), ("uniform", "cifar10")} <= cells.keys():
        out["rf_v1_minus_uniform_cifar10"] = difference(cells["v1", "cifar10"], cells["uniform", "cifar10"])
    return out


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    """Claim metrics from the finished runs (runs not finished are simply absent)."""
    table = measure_table({p: r for p, r in results.items() if p.experiment == "features"}, scale)
    factconv = {p: r for p, r in results.items() if p.experiment != "features"}
    if not factconv:
        return table
    _plot(factconv, figure_dir)
    return measure_factconv(factconv) | table


def _plot(results: dict[RunPlan, RunResult], figure_dir: Path) -> None:
    """Trained and resampled accuracy of every run (one group of bars per run)."""
    labels = [f"{label(network_of(p))}\nseed {seed_of(p)}" for p in results]
    variants = ("trained", "none", "wa", "aca", "both", "retrained")
    fig, ax = plt.subplots(figsize=(0.9 * len(results) + 2, 3.8))
    for i, variant in enumerate(variants):
        xs = [j + (i - len(variants) / 2) * 0.13 for j in range(len(results))]
        ax.bar(xs, [r.metrics[f"resample/{variant}_acc"] for r in results.values()], width=0.13, label=variant)
    ax.axhline(0.1, ls=":", c="gray")
    ax.set_xticks(range(len(results)), labels, fontsize=6, rotation=60)
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.set_title("FactConv networks: trained and resampled, by factor ablation and alignment")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_dir / "ablations.png", dpi=110)
    plt.close(fig)
