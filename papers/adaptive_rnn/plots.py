"""Figures of one run (accuracy vs perturbation, (n, s) across neurons, gain scaling, fractional order,
Lyapunov exponent) and of the reproduction (every model side by side)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.plotting import plt
from papers.adaptive_rnn.analysis import exponential, power_law

LABELS = {"amplitude": "amplitude modulation A", "drive": "step drive ξ", "noise": "pre-activation noise ξ",
          "pixel_noise": "pixel noise ξ (our extra)"}


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(record: dict, folder: Path, title: str) -> None:
    sweeps = record["sweeps"]
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.3 * len(sweeps), 3))
    for ax, (kind, sweep) in zip(axes, sweeps.items(), strict=True):
        ax.plot([0, *sweep["xi"]], [record["clean_acc"], *sweep["acc"]], "o-", ms=3)
        ax.set(xlabel=LABELS[kind], ylabel="test accuracy", ylim=(0, 1))
    fig.suptitle(title, fontsize=9)
    _save(fig, folder / "perturbations.png")
    if "neurons" in record:
        fig, axes = plt.subplots(1, 2, figsize=(6.6, 3))
        for ax, key in zip(axes, ("n", "s"), strict=True):
            ax.hist(record["neurons"][key], bins=20)
            ax.set(xlabel=f"{key} per neuron", ylabel="neurons")
        fig.suptitle(title, fontsize=9)
        _save(fig, folder / "gains.png")
    if "gain_scaling" in record:
        plot_gain_scaling({title: record["gain_scaling"]}, folder / "gain_scaling.png")
    frac = record["fractional"]
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3))
    response = np.asarray(frac["response"])
    axes[0].plot(response / np.abs(response).max(), label=f"neuron-mean response, α = {frac['alpha']:.2f}")
    axes[0].plot(frac["drive"], "k--", lw=0.8, label="drive (shape)")
    axes[0].set(xlabel="step", ylabel="normalised")
    axes[0].legend(fontsize=7)
    axes[1].hist(frac["alpha_per_neuron"], bins=20)
    axes[1].set(xlabel="α per neuron", ylabel="neurons")
    fig.suptitle(title, fontsize=9)
    _save(fig, folder / "fractional_order.png")
    lyap = record["lyapunov"]
    fig, ax = plt.subplots(figsize=(3.6, 3))
    ax.plot(lyap["xi"], lyap["exponent"], "o-")
    ax.axhline(0, c="gray", lw=0.8)
    ax.set(xlabel="constant drive ξ", ylabel="max. Lyapunov exponent (bits / step)", yscale="symlog")
    _save(fig, folder / "lyapunov.png")


def plot_gain_scaling(curves: dict[str, dict], path: Path) -> None:
    """n̄ and s̄ against ξ with their fits, one curve per entry of `curves`."""
    fig, axes = plt.subplots(1, 2, figsize=(6.6, 3))
    for i, (label, c) in enumerate(curves.items()):
        xi = np.asarray(c["xi"], float)
        fine = np.linspace(xi.min(), xi.max(), 100)
        for ax, key, model in ((axes[0], "n", power_law), (axes[1], "s", exponential)):
            ax.plot(xi, c[key], "o", color=f"C{i}", ms=3, label=label)
            if not np.isnan(c["fit"][key]).any():
                ax.plot(fine, model(fine, *c["fit"][key]), "-", color=f"C{i}", lw=0.8)
    axes[0].set(xlabel="pre-activation noise ξ", ylabel="mean adapted gain n̄")
    axes[1].set(xlabel="pre-activation noise ξ", ylabel="mean adapted saturation s̄")
    axes[0].legend(fontsize=6)
    _save(fig, path)


def plot_comparison(models: dict[str, dict[str, float]], sweeps: dict[str, list[float]], chance: float,
                    path: Path) -> None:
    """Chance-corrected accuracy retained, (acc(ξ) − chance) / (clean − chance), against strength ξ, one curve per
    model (its seed means), one panel per kind; the last panel the maximal Lyapunov exponent against constant
    drive."""
    fig, axes = plt.subplots(1, len(sweeps) + 1, figsize=(3.3 * (len(sweeps) + 1), 3))
    for label, m in models.items():
        for ax, (kind, xis) in zip(axes, sweeps.items(), strict=False):
            kept = [(m.get(f"{kind}_acc_xi{xi:g}", np.nan) - chance) / (m["clean_acc"] - chance) for xi in xis]
            ax.plot(xis, kept, "o-", ms=3, label=label)
            ax.set(xlabel=LABELS[kind], ylabel="(acc − chance) / (clean − chance)", ylim=(-0.1, 1.05))
        lyap = sorted((float(k.split("_xi")[1]), v) for k, v in m.items() if k.startswith("lyapunov_xi"))
        axes[-1].plot(*zip(*lyap, strict=True), "o-", ms=3, label=label)
    axes[-1].set(xlabel="constant drive ξ", ylabel="max. Lyapunov exponent (bits / step)", yscale="symlog")
    axes[0].legend(fontsize=6)
    _save(fig, path)
