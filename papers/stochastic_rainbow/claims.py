"""What White et al. (2024, "Learning Stochastic Rainbow Networks", NeurIPS Sci4DL workshop) claim, and which runs
measure it. No numbers were published (the results lived in a private W&B project), so every
expectation is a direction (an inequality) or a gap stated before any run, never a tuned threshold.

Accuracy of a variant = `sample/acc_mean`: the mean test accuracy of its 10 fixed samples (each with its own
running alignment and BatchNorm statistics), a lower-variance estimate than one sample.

Smoke (embedded MNIST digits, ResNet-9 at width scale 0.25, 6 epochs): full-rank channel factors and the
rank-plus-diagonal ("lrdiag") factors at k = 1, 4, 16 (k clipped to each layer's input channels). Paper
(CIFAR-10, 200 epochs): ResNet-9 / 18 / 34 at width scales 0.5-4, and the low-rank sweep on ResNet-18 at width 1.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.claims import Claim, Expectation  # noqa: E402
from common.registry import RunPlan  # noqa: E402

SMOKE_RANKS = (1, 4, 16)
PAPER_RANKS = (1, 4, 16, 64)
PAPER_DEPTHS = (9, 18, 34)
PAPER_WIDTHS = (0.5, 1.0, 2.0, 4.0)
BATCH_SIZE = {0.5: 256, 1.0: 256, 2.0: 512, 4.0: 1024}  # the note's recipe, lr kept
RANK_GAP = 0.02  # "approaches full rank": the largest k within 2 points of full rank (fixed before any run)


def _at_both(expectation: Expectation) -> dict[str, Expectation]:
    return {"smoke": expectation, "paper": expectation}


CLAIMS: tuple[Claim, ...] = (
    Claim("deeper_beats_shallower_wide", "At the largest width, the deepest stochastic rainbow ResNet (34) beats "
          "the shallowest (9): mean sample accuracy, ResNet-34 − ResNet-9", "Sci4DL 2024, claim 1",
          "depth34_minus_depth9_widest", {"paper": Expectation(">=", 0.0)}),
    Claim("ensemble_beats_retrained_head", "An ensemble of 10 samples (mean logits) beats one sample with its "
          "Linear head retrained (min over runs of ensemble − retrained)", "Sci4DL 2024, claim 2",
          "min_ensemble_minus_retrained", _at_both(Expectation(">=", 0.0))),
    Claim("ensemble_grows_with_k", "Ensembling helps: 10 samples beat 1 sample (min over runs of "
          "acc(K=10) − acc(K=1))", "Sci4DL 2024, claim 2", "min_ensemble_gain",
          _at_both(Expectation(">=", 0.0))),
    Claim("low_rank_approaches_full", f"Low-rank channel covariances approach full rank: the largest k sweeps to "
          f"within {RANK_GAP:g} of full rank (full − lrdiag k_max)", "Sci4DL 2024, claim 3",
          "full_minus_largest_rank", _at_both(Expectation("<=", RANK_GAP))),
    Claim("low_rank_gap_shrinks", "The gap to full rank shrinks as k grows: gap(k_min) − gap(k_max)",
          "Sci4DL 2024, claim 3", "rank_gap_shrinkage", _at_both(Expectation(">=", 0.0))),
)


def _rank_plan(k: int, *scale: str) -> RunPlan:
    return RunPlan("resnet", (*scale, "factconv.channel=lrdiag", f"factconv.rank={k}"))


def plan(scale: str) -> list[RunPlan]:
    if scale == "smoke":
        return [RunPlan("resnet")] + [_rank_plan(k) for k in SMOKE_RANKS]
    depths = [RunPlan("resnet", ("scale=paper", f"model.depth={d}", f"model.width_scale={w}",
                                 f"data.batch_size={BATCH_SIZE[w]}"))
              for w in PAPER_WIDTHS for d in PAPER_DEPTHS]
    return depths + [_rank_plan(k, "scale=paper") for k in PAPER_RANKS]


# the full-rank run the low-rank sweep is compared with: the sweep's network with channel=full
FULL_RANK = {"smoke": RunPlan("resnet"), "paper": RunPlan("resnet", ("scale=paper", "model.depth=18",
                                                                      "model.width_scale=1.0", "data.batch_size=256"))}


def _setting(p: RunPlan) -> dict[str, str]:
    return dict(o.split("=", 1) for o in p.overrides)


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Claim metrics from the finished runs' summaries (runs not finished are simply absent)."""
    results = {p: m for p, m in results.items() if "sample/acc_mean" in m}
    if not results:
        return {}
    out = {"min_ensemble_minus_retrained": min(m["ensemble/acc"] - m["sample/retrained_acc"] for m in results.values()),
           "min_ensemble_gain": min(m["ensemble/acc"] - m["ensemble/acc_k1"] for m in results.values())}
    full = [m["sample/acc_mean"] for p, m in results.items() if p == FULL_RANK[scale]]
    ranks = {int(_setting(p)["factconv.rank"]): m["sample/acc_mean"] for p, m in results.items()
             if "factconv.rank" in _setting(p)}
    if full and ranks:
        gaps = {k: full[0] - acc for k, acc in sorted(ranks.items())}
        out |= {f"gap_rank{k}": g for k, g in gaps.items()}
        out["full_minus_largest_rank"] = gaps[max(gaps)]
        out["rank_gap_shrinkage"] = gaps[min(gaps)] - gaps[max(gaps)]
    depth_acc = {(int(s["model.depth"]), float(s["model.width_scale"])): m["sample/acc_mean"]
                 for p, m in results.items() if "model.depth" in (s := _setting(p))}
    widest = max((w for _, w in depth_acc), default=None)
    if {(34, widest), (9, widest)} <= depth_acc.keys():
        out["depth34_minus_depth9_widest"] = depth_acc[34, widest] - depth_acc[9, widest]
    _plot(full[0] if full else None, ranks, depth_acc, figure_dir)
    return out


def _plot(full: float | None, ranks: dict[int, float], depth_acc: dict[tuple[int, float], float],
          figure_dir: Path) -> None:
    fig, (ax_rank, ax_depth) = plt.subplots(1, 2, figsize=(10, 3.6))
    if ranks:
        ks = sorted(ranks)
        ax_rank.plot(ks, [ranks[k] for k in ks], "o-", label="lrdiag, rank k")
        ax_rank.set_xscale("log", base=2)
    if full is not None:
        ax_rank.axhline(full, ls="--", c="k", label="full rank")
    ax_rank.set_xlabel("channel-factor rank k")
    ax_rank.set_ylabel("mean sample test accuracy")
    ax_rank.set_title("low-rank channel covariances", fontsize=10)
    ax_rank.legend(fontsize=7)
    for depth in sorted({d for d, _ in depth_acc}):
        ws = sorted(w for d, w in depth_acc if d == depth)
        ax_depth.plot(ws, [depth_acc[depth, w] for w in ws], "o-", label=f"ResNet-{depth}")
    ax_depth.set_xlabel("width scale")
    ax_depth.set_title("depth at each width (paper scale)", fontsize=10)
    if depth_acc:
        ax_depth.set_xscale("log", base=2)
        ax_depth.legend(fontsize=7)
    fig.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_dir / "depth_and_rank.png", dpi=110)
    plt.close(fig)
