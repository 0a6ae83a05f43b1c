"""Heat maps of layer × layer CKA maps, side by side, values written in the cells."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from common.plotting import plt


def plot_cka_maps(maps: dict[str, torch.Tensor], layers: Sequence[str], path: Path, title: str,
                  columns: int = 3) -> None:
    """One panel per map (rows: the first model's layers, columns: the second's), a shared 0-1 colour scale."""
    rows = -(-len(maps) // columns)
    cols = min(columns, len(maps))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.3 * rows), squeeze=False)
    ticks = [name.rsplit(".", 1)[-1] for name in layers]
    image = None
    for ax, (name, values) in zip(axes.flat, maps.items(), strict=False):
        grid = values.detach().double().cpu()
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="magma", origin="lower")
        for (i, j), v in zip(torch.cartesian_prod(torch.arange(grid.shape[0]), torch.arange(grid.shape[1])).tolist(),
                             grid.flatten().tolist(), strict=True):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if v < 0.6 else "black")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("block", fontsize=7)
        ax.set_ylabel("block", fontsize=7)
        ax.set_xticks(range(grid.shape[1]), ticks[: grid.shape[1]], fontsize=7)
        ax.set_yticks(range(grid.shape[0]), ticks[: grid.shape[0]], fontsize=7)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="CKA")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
