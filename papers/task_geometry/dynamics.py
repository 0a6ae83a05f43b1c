"""The weight-dynamics view of Alleman et al. (2024, Fig. 1C-D): hidden units' input weights along the inter-class
axis and the intra-class axes of a one-target task.

For inputs X (n conditions × D, noise-free) with a binary target y, the inter-class axis is
u = (mean_{y=1} x − mean_{y=0} x) / ‖·‖ and the intra-class axes B (D × r, orthonormal, orthogonal to u) span the
conditions' offsets from their class mean. A hidden unit with input weight w sits at (uᵀw, Bᵀw). The paper's
mechanism: a Tanh unit's gradient collects every condition (f′ > 0 on both sides), so its weight moves along u
and the unit inherits the label structure; a ReLU unit's gradient collects only the conditions on its active
side, so it moves along the intra-class axes and specialises to a region of input space. Measured as the share
of a network's total weight change Δ = w_end − w_start that lies along u:
    inter_fraction = Σ_j (uᵀΔ_j)² / Σ_j ((uᵀΔ_j)² + ‖BᵀΔ_j‖²).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from common.errors import UserError
from common.plotting import plt


def class_axes(clean: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """clean (K, n, D) inputs per knob value, target (n,) 0/1 -> u (K, D) and B (K, D, r), float64."""
    x, y = clean.double(), target.bool()
    means = torch.stack([x[:, ~y].mean(1), x[:, y].mean(1)], 1)  # (K, 2, D)
    inter = means[:, 1] - means[:, 0]
    norm = inter.norm(dim=1, keepdim=True)
    if (norm < 1e-9 * x.norm(dim=(1, 2))[:, None]).any():
        raise UserError("The weight-dynamics view needs an inter-class axis: the class means coincide at a knob "
                        "value (c = 0 puts no input variance on the target). Use knob values > 0.")
    u = inter / norm
    offsets = x - means[:, y.long()]  # (K, n, D): each condition minus its class mean
    offsets = offsets - (offsets @ u[:, :, None]) * u[:, None, :]
    rank = len(y) - 2
    basis = torch.linalg.svd(offsets.transpose(1, 2), full_matrices=False).U[:, :, :rank]  # (K, D, r)
    return u, basis


def project(w: Tensor, knob_of: Tensor, u: Tensor, basis: Tensor) -> Tensor:
    """Input weights w (G, D, width) of networks at knob values `knob_of` -> (G, width, 1 + r): (uᵀw, Bᵀw)."""
    w = w.double()
    along = torch.einsum("gdw,gd->gw", w, u[knob_of])
    across = torch.einsum("gdw,gdr->gwr", w, basis[knob_of])
    return torch.cat([along[..., None], across], 2)


def inter_fraction(start: Tensor, end: Tensor) -> Tensor:
    """(G,) share of each network's weight change along the inter-class axis, from two `project` snapshots."""
    change = (end - start).square()
    return change[..., 0].sum(1) / change.sum((1, 2))


def plot_trajectories(snapshots: Tensor, rows: dict[str, int], path: Path) -> None:
    """Fig. 1D: each unit's path in (inter-class, ‖intra-class‖) coordinates, one panel per named network."""
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.8), squeeze=False)
    for ax, (name, g) in zip(axes[0], rows.items(), strict=True):
        path_g = snapshots[:, g]  # (T, width, 1 + r)
        along, across = path_g[..., 0], path_g[..., 1:].norm(dim=-1)
        ax.plot(along.numpy(), across.numpy(), lw=0.6, alpha=0.7)
        ax.scatter(along[0].numpy(), across[0].numpy(), s=8, facecolors="none", edgecolors="k", lw=0.5)
        ax.set_xlabel("inter-class axis  uᵀw")
        ax.set_ylabel("intra-class  ‖Bᵀw‖")
        ax.set_title(name, fontsize=9)
    fig.suptitle("input weights of every hidden unit during training (circles: initial)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
