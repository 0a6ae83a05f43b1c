"""A paper's claims drawn as intervals against their thresholds (a forest plot): one row per claim, each on its own
x axis (claims measure different things), the claim's side of the threshold shaded, the 95 % interval as a bar and
the measured value as a dot coloured by its status."""

from __future__ import annotations

import math
from pathlib import Path

from common.claims import Claim
from common.plotting import plt

STATUS_COLOURS = {"reproduced": "#1a7f37", "not_reproduced": "#cf222e", "inconclusive": "#9a6700",
                  "not_run": "#8c959f"}
SIDE = "#dafbe1"  # the claim's side of the threshold


def _limits(row: dict, claim: Claim) -> tuple[float, float]:
    expectation = claim.expected[row["expected_scale"]]
    points = [expectation.value]
    if expectation.op == "≈":
        points += [expectation.value - expectation.tol, expectation.value + expectation.tol]
    if row["measured"] is not None:
        points.append(row["measured"])
    if row["interval"] and row["interval"][0] is not None:
        points += row["interval"]
    low, high = min(points), max(points)
    pad = 0.2 * (high - low) or 0.1 * max(abs(high), 1e-3)
    return low - pad, high + pad


def draw_forest(rows: list[dict], claims: tuple[Claim, ...], path: Path, title: str) -> Path | None:
    """Draw `rows` (scorecard rows of `claims` expected at the report's scale) into `path`; None (nothing drawn)
    when `rows` is empty."""
    if not rows:
        return None
    by_id = {c.id: c for c in claims}
    fig, axes = plt.subplots(len(rows), 1, figsize=(9, 0.55 * len(rows) + 0.9), squeeze=False)
    for ax, row in zip(axes[:, 0], rows, strict=True):
        claim = by_id[row["id"]]
        expectation = claim.expected[row["expected_scale"]]
        low, high = _limits(row, claim)
        v = expectation.value
        side = {">=": (v, high), ">": (v, high), "<=": (low, v), "<": (low, v),
                "≈": (v - expectation.tol, v + expectation.tol)}[expectation.op]
        ax.axvspan(*side, color=SIDE, zorder=0)
        ax.axvline(v, color="k", ls="--", lw=0.8)
        colour = STATUS_COLOURS[row["status"]]
        if row["measured"] is not None:
            interval = row["interval"] or [None, None]
            if interval[0] is not None and all(math.isfinite(x) for x in interval):
                ax.plot(interval, [0, 0], color=colour, lw=3, solid_capstyle="butt")
            ax.plot([row["measured"]], [0], "o", color=colour, ms=6)
        else:
            ax.text(0.5, 0, "not measured", transform=ax.get_yaxis_transform(), ha="center", va="center",
                    color=colour, fontsize=8)
        ax.set_xlim(low, high)
        ax.set_ylim(-1, 1)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.set_ylabel(row["id"], rotation=0, ha="right", va="center", fontsize=8)
        status = row["status"].replace("_", " ") + (" (invalid)" if row["note"].startswith("invalid") else "")
        ax.text(1.01, 0.5, f"{status}\n{row['expected']}", transform=ax.transAxes,
                fontsize=7, va="center", color=colour)
        for spine in ("top", "right", "left"):
            ax.spines[spine].set_visible(False)
    axes[0, 0].set_title(title, fontsize=10)
    fig.tight_layout(h_pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
