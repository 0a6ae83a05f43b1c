"""Claim metrics of White et al. (2024, Sci4DL) from the finished runs, each a `common.stats.Measured`.

Runs are grouped into settings (their overrides without the seed); the seeds of a setting are its replicates. Every
quantity is a per-example score on the shared test set (`outcomes.npz`: `sample`, the fraction of the 10 samples
right; `ensemble`; `retrained`), or the paired difference of two such scores, from one run or from two runs of the
same seed. Over k >= 2 seeds its value is the mean of the seeds' test-set means, its SE the spread over seeds plus
the shared test set's own noise, Student t (`common.stats.over_seeds`); with one seed, the mean ± sd/√n over the n
test examples, noted ONE_RUN (a lower bound)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.outcomes import RunResult
from common.plotting import plt
from common.registry import RunPlan
from common.stats import Measured, mean_of_scores, min_of, over_seeds
from papers.stochastic_rainbow.claims import FULL_RANK

Setting = tuple[str, ...]  # a run's overrides without its seed
Runs = dict[int, RunResult]  # seed -> result


def seed_of(p: RunPlan) -> int:
    return int(next((o.split("=", 1)[1] for o in p.overrides if o.startswith("seed=")), 0))


def setting_of(p: RunPlan) -> Setting:
    return tuple(o for o in p.overrides if not o.startswith("seed="))


def _options(setting: Setting) -> dict[str, str]:
    return dict(o.split("=", 1) for o in setting)


def paired_runs(a: Runs, b: Runs, variant: str = "sample") -> Measured:
    """acc(a) − acc(b) of two settings on the same test set: per seed both ran, the per-example difference of
    their `variant` scores (paired by example and by seed)."""
    seeds = sorted(a.keys() & b.keys())
    return over_seeds([a[s].outcomes[variant] - b[s].outcomes[variant] for s in seeds])


def within_runs(settings: dict[Setting, Runs], score: Callable[[dict[str, np.ndarray]], np.ndarray]) -> list[Measured]:
    """`score` (a per-example score of one run's variants) for every setting, over its seeds."""
    return [over_seeds([score(r.outcomes) for r in runs.values()]) for runs in settings.values()]


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    """Claim metrics from the finished runs (runs not finished, or the baselines without samples, are absent)."""
    settings: dict[Setting, Runs] = defaultdict(dict)
    for p, r in results.items():
        if "sample" in r.outcomes:
            settings[setting_of(p)][seed_of(p)] = r
    if not settings:
        return {}
    out = {"min_sample_acc": min_of([mean_of_scores(r.outcomes["sample"]) for runs in settings.values()
                                     for r in runs.values()], "runs"),
           "min_ensemble_minus_samples": min_of(within_runs(settings, lambda o: o["ensemble"] - o["sample"]),
                                                "settings"),
           "min_ensemble_minus_retrained": min_of(within_runs(settings, lambda o: o["ensemble"] - o["retrained"]),
                                                  "settings")}
    full = settings.get(FULL_RANK[scale])
    ranks = {k: runs for s, runs in settings.items() if (k := _rank(s))}
    if ranks:
        out["largest_minus_smallest_rank"] = paired_runs(ranks[max(ranks)], ranks[min(ranks)])
    if full and ranks:
        gaps = {k: paired_runs(full, runs) for k, runs in sorted(ranks.items())}
        out |= {f"gap_rank{k}": g for k, g in gaps.items()}
        out["full_minus_largest_rank"] = gaps[max(gaps)]
    depths = {dw: runs for s, runs in settings.items() if (dw := _depth_width(s))}
    widest = max((w for _, w in depths), default=None)
    if {(34, widest), (9, widest)} <= depths.keys():
        out["depth34_minus_depth9_widest"] = paired_runs(depths[34, widest], depths[9, widest])
    sample = {s: over_seeds([r.outcomes["sample"] for r in runs.values()]) for s, runs in settings.items()}
    out |= {f"sample_acc_{_label(s)}": m for s, m in sample.items()}
    _plot(sample.get(FULL_RANK[scale]), {_rank(s): m for s, m in sample.items() if _rank(s)},
          {_depth_width(s): m for s, m in sample.items() if _depth_width(s)}, figure_dir)
    return out


def _rank(setting: Setting) -> int | None:
    """The lrdiag / lowrank rank k of a setting (None: full rank)."""
    rank = _options(setting).get("factconv.rank")
    return int(rank) if rank else None


def _depth_width(setting: Setting) -> tuple[int, float] | None:
    """(depth, width scale) of a setting of the depth grid (None: not in it)."""
    o = _options(setting)
    return (int(o["model.depth"]), float(o["model.width_scale"])) if "model.depth" in o else None


def _label(setting: Setting) -> str:
    """'full', 'lrdiag_k4', 'resnet34_w4.0_full', ...: a setting's name among the measured quantities."""
    o, rank = _options(setting), _rank(setting)
    net = f"resnet{o['model.depth']}_w{o['model.width_scale']}_" if "model.depth" in o else ""
    return net + (f"{o['factconv.channel']}_k{rank}" if rank else "full")


def _errorbar(ax: plt.Axes, xs: list[float], ms: list[Measured], **kwargs: object) -> None:
    """Values with their 95 % intervals (none drawn where unknown)."""
    ys = [m.value for m in ms]
    lo, hi = zip(*(m.interval for m in ms), strict=True)
    err = np.nan_to_num([np.subtract(ys, lo), np.subtract(hi, ys)])
    ax.errorbar(xs, ys, yerr=err, capsize=3, **kwargs)


def _plot(full: Measured | None, ranks: dict[int, Measured], depths: dict[tuple[int, float], Measured],
          figure_dir: Path) -> None:
    fig, (ax_rank, ax_depth) = plt.subplots(1, 2, figsize=(10, 3.6))
    if ranks:
        ks = sorted(ranks)
        _errorbar(ax_rank, ks, [ranks[k] for k in ks], fmt="o-", label="lrdiag, rank k")
        ax_rank.set_xscale("log", base=2)
    if full is not None:
        ax_rank.axhline(full.value, ls="--", c="k", label="full rank")
    ax_rank.set_xlabel("channel-factor rank k")
    ax_rank.set_ylabel("mean sample test accuracy (95 % interval)")
    ax_rank.set_title("low-rank channel covariances", fontsize=10)
    ax_rank.legend(fontsize=7)
    for depth in sorted({d for d, _ in depths}):
        ws = sorted(w for d, w in depths if d == depth)
        _errorbar(ax_depth, ws, [depths[depth, w] for w in ws], fmt="o-", label=f"ResNet-{depth}")
    ax_depth.set_xlabel("width scale")
    ax_depth.set_title("depth at each width (paper scale)", fontsize=10)
    if depths:
        ax_depth.set_xscale("log", base=2)
        ax_depth.legend(fontsize=7)
    fig.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_dir / "depth_and_rank.png", dpi=110)
    plt.close(fig)
