"""Geometry against the knob c, one curve per nonlinearity (mean ± s.e. over seeds), and the Tanh − ReLU gap."""

from __future__ import annotations

from pathlib import Path

from common.plotting import plt

TITLES = {"target_alignment": "alignment to targets (CKA)", "input_alignment": "alignment to inputs (CKA)",
          "ccgp": "CCGP", "parallelism": "parallelism score"}


def plot_sweep(summary: dict, path: Path, title: str, knob: str) -> None:
    knobs = summary["knobs"]
    panels = len(TITLES) + ("gap" in summary)
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 3.4))
    for ax, (metric, label) in zip(axes, TITLES.items(), strict=False):
        for activation, cell in summary["cells"].items():
            means, sems = zip(*cell[metric], strict=True)
            line = ax.errorbar(knobs, means, yerr=sems, marker="o", ms=3, capsize=2, label=activation)
            averaged = summary.get("seed_averaged", {}).get(activation, {}).get(metric)
            if averaged:  # the authors' variant: CKA of the seed-averaged hidden kernel
                ax.plot(knobs, averaged, ls="--", lw=1, color=line[0].get_color(),
                        label=f"{activation}, seed-averaged kernel")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel(knob)
    axes[0].legend(fontsize=7)
    if "gap" in summary:
        ax = axes[-1]
        for metric, per_knob in summary["gap"].items():
            if metric == "train_acc":  # not a geometry metric (geometry.json holds it)
                continue
            means, sems = zip(*per_knob, strict=True)
            ax.errorbar(knobs, means, yerr=sems, marker="o", ms=3, capsize=2, label=metric)
        ax.axhline(0, c="gray", lw=0.8)
        ax.set_title("Tanh − ReLU (paired by seed)", fontsize=9)
        ax.set_xlabel(knob)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
