"""The rainbow claim metrics, each a `Measured`, from the finished runs' per-example test scores.

Every run saves, per test example i (study.py, `outcomes.npz`): `trained` 1/0 correct, and for each sampled
variant the fraction of its `samples` sampled networks that got i right. The runs of one width (smoke: k training
seeds; paper: one run) share the test set. For a per-example contrast d_{s,i} of run s (a variant's score, or the
difference of two variants of that run: the paired difference) the width's estimate is

    value = mean_s mean_i d_{s,i},
    SE²   = Var_s(mean_i d_{s,i}) / k      training and sampling noise: the spread over seeds
          + Var_i(mean_s d_{s,i}) / n      test-set noise: common to every seed, so the spread over seeds misses it

with a Student-t interval, degrees of freedom by Welch–Satterthwaite (the seed term has k − 1, the test term
n − 1). A contrast between two widths (the gap at the narrowest minus the gap at the widest) adds the seed terms
of both groups of runs and takes the test term of the per-example contrast. A width with one training run has no
seed spread: its SE is the test set's alone, note `ONE_RUN` (a lower bound that ignores training noise).
A claim "at every width" is the `min_of` / `max_of` of the per-width values (the conservative interval).
(`common.stats.over_seeds` computes it.)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from common.outcomes import RunResult
from common.plotting import plt
from common.registry import RunPlan
from common.stats import Measured, max_of, mean_of_scores, mean_over, min_of, over_seeds
from papers.rainbow.claims import PAPER_SCALES, TABLE1_RAINBOW, TABLE1_TRAINED

WIDTH_KEY = {"smoke": "model.width", "paper": "model.width_scale"}
ROWS = ("trained", "rainbow", "full", "retrained", "iid", "noalign")


def paired(runs: Sequence[RunResult], a: str, b: str | None = None) -> Measured:
    """Variant a's per-example score (minus variant b's, paired within each run) over the runs of one width."""
    return over_seeds([r.outcomes[a] - (r.outcomes[b] if b else 0.0) for r in runs])


def _width(plan: RunPlan, key: str) -> float:
    return float(next(o.split("=", 1)[1] for o in plan.overrides if o.startswith(f"{key}=")))


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    """Claim metrics (and per-width gaps and retraining gains) from the finished runs; runs not finished are
    absent, runs without per-example scores (made before outcomes.npz existed) are left out with a warning."""
    old = [p for p, r in results.items() if not r.outcomes]
    if old:
        warnings.warn(f"rainbow: {len(old)} run(s) have no outcomes.npz (older code) and are left out: rerun them",
                      stacklevel=2)
    results = {p: r for p, r in results.items() if r.outcomes}
    if not results:
        return {}
    key = WIDTH_KEY[scale]
    by_width: dict[tuple[str, float], list[RunResult]] = {}
    for p, r in results.items():
        by_width.setdefault((p.experiment, _width(p, key)), []).append(r)
    by_width = dict(sorted(by_width.items()))
    widths = list(by_width.values())
    out: dict[str, Measured] = {
        "min_trained_acc": min_of([mean_of_scores(r.outcomes["trained"]) for r in results.values()], "runs"),
        "min_rainbow_acc": min_of([paired(runs, "rainbow") for runs in widths], "widths"),
        "max_noalign_acc": max_of([paired(runs, "noalign") for runs in widths], "widths"),
        "min_retrain_gain": min_of([paired(runs, "retrained", "full") for runs in widths], "widths"),
        "min_trained_minus_retrained": min_of([paired(runs, "trained", "retrained") for runs in widths], "widths"),
        "min_full_minus_iid": min_of([paired(runs, "full", "iid") for runs in widths], "widths"),
    }
    for (exp, w), runs in by_width.items():
        label = f"{exp}_w{w:g}" if scale == "smoke" else f"s{w:g}"
        out[f"gap_{label}"] = paired(runs, "trained", "rainbow")
        out[f"retrain_gain_{label}"] = paired(runs, "retrained", "full")
    widest, shrink = [], []
    for exp in sorted({e for e, _ in by_width}):
        ws = sorted(w for e, w in by_width if e == exp)
        if scale == "paper" and (ws[0], ws[-1]) != (min(PAPER_SCALES), max(PAPER_SCALES)):
            continue  # the paper-scale claims are about s = 1/8 and s = 4
        narrow, wide = by_width[exp, ws[0]], by_width[exp, ws[-1]]
        widest.append(paired(wide, "trained", "rainbow"))
        if len(ws) > 1:
            shrink.append(over_seeds([r.outcomes["trained"] - r.outcomes["rainbow"] for r in narrow],
                                        [r.outcomes["trained"] - r.outcomes["rainbow"] for r in wide]))
    if widest:
        out["widest_gap"] = max_of(widest, "architectures")
    if shrink:
        out["gap_narrow_minus_wide"] = min_of(shrink, "architectures")
    mlp = sorted(w for e, w in by_width if e == "mlp")
    if scale == "smoke" and mlp:  # a deterministic function of each run's weights: the spread over seeds alone
        out["widest_mlp_rank90_frac_layer1"] = mean_over(
            [r.metrics["resample/rank90_frac_layer1"] for r in by_width["mlp", mlp[-1]]], "seeds")
    if scale == "paper":
        for (_, s), runs in by_width.items():
            for row in ("trained", "rainbow", "retrained"):
                out[f"{row}_acc_s{s:g}"] = paired(runs, row)
    _plot_vs_width(by_width, key, figure_dir)
    return out


def _plot_vs_width(by_width: dict[tuple[str, float], list[RunResult]], key: str, figure_dir: Path) -> None:
    """Accuracy of every variant against width (mean over seeds, 95 % interval), one panel per experiment."""
    experiments = sorted({e for e, _ in by_width})
    fig, axes = plt.subplots(1, len(experiments), figsize=(5 * len(experiments), 3.8), squeeze=False)
    for ax, exp in zip(axes[0], experiments, strict=True):
        widths = sorted(w for e, w in by_width if e == exp)
        for variant, color in zip(ROWS, ("k", "C3", "C1", "C2", "C0", "C7"), strict=True):
            accs = [paired(by_width[exp, w], variant) for w in widths]
            low, high = np.array([a.interval for a in accs]).T
            values = np.array([a.value for a in accs])
            err = np.nan_to_num(np.stack([values - low, high - values]))
            ax.errorbar(widths, values, yerr=err, marker="o", color=color, label=variant, capsize=3)
        if exp == "scattering":
            ax.plot(list(TABLE1_RAINBOW), list(TABLE1_RAINBOW.values()), "C3--", label="paper rainbow")
            ax.plot(list(TABLE1_TRAINED), list(TABLE1_TRAINED.values()), "k--", label="paper trained")
        ax.set_xscale("log", base=2)
        ax.set_xlabel(key)
        ax.set_ylabel("test accuracy (95 % interval)")
        ax.set_ylim(0, 1)
        ax.set_title(exp)
        ax.legend(fontsize=7)
    fig.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_dir / "accuracy_vs_width.png", dpi=110)
    plt.close(fig)
