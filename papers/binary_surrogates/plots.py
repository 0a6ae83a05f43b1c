"""Figures of a trained grid: the trainability heat map with 6ξ_c, and binary networks against depth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from common.plotting import plt
from papers.binary_surrogates.analysis import DEPTH_SCALES
from papers.binary_surrogates.theory import depth_scale


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_heatmap(record: dict[str, Any], sigma_b2: float, surrogate: str, phi: str, path: Path) -> None:
    """Training accuracy over (σ_m², depth) with the curve L = 6ξ_c(σ_m²) (the paper's heat map)."""
    depths, sigmas = sorted(set(record["depth"])), sorted(set(record["sigma_m2"]))
    acc = torch.full((len(depths), len(sigmas)), float("nan"))
    for d, s, a in zip(record["depth"], record["sigma_m2"], record["train_acc"], strict=True):
        acc[depths.index(d), sigmas.index(s)] = a
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    image = ax.pcolormesh(sigmas, depths, acc, vmin=0, vmax=1, cmap="viridis", shading="nearest")
    fine = torch.linspace(min(sigmas), max(sigmas), 200, dtype=torch.float64)
    ax.plot(fine, DEPTH_SCALES * depth_scale(fine, sigma_b2, surrogate, phi=phi), c="red", lw=1.5, label="L = 6 ξ_c")
    step = depths[1] - depths[0] if len(depths) > 1 else 1
    ax.set_ylim(depths[0] - step / 2, depths[-1] + step / 2)
    ax.set_xlabel("σ_m²")
    ax.set_ylabel("depth L")
    ax.set_title(f"{surrogate} surrogate: training accuracy (φ = {phi}, σ_b² = {sigma_b2:g})", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.colorbar(image, ax=ax)
    _save(fig, path)


def plot_binary(record: dict[str, Any], path: Path) -> None:
    """Test accuracy against depth: the surrogate, its stochastic binary networks, its sign network."""
    order = sorted(range(len(record["depth"])), key=lambda i: record["depth"][i])
    depths = [record["depth"][i] for i in order]
    fig, ax = plt.subplots(figsize=(6, 4))
    names = ["test_acc"] + [k for k in record if k.startswith("stochastic")] + ["deterministic"]
    labels = {"test_acc": "surrogate", "deterministic": "deterministic binary (W = sign M)"}
    for name in names:
        label = labels.get(name, f"stochastic binary, {name.removeprefix('stochastic')} samples")
        ax.plot(depths, [record[name][i] for i in order], marker="o", label=label)
    ax.set_xlabel("depth L")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"binary networks from trained surrogates (σ_m² = {record['sigma_m2'][0]:g})", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)
