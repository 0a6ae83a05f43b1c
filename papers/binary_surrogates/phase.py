"""Phase diagram of the surrogates over the initialisation plane (Stamatescu et al. 2020, the mean-field analysis).

Over a grid of (σ_m², σ_b²): χ₁, the slope of the deterministic c-map at c = 1 (ordered where χ₁ < 1, chaotic
where χ₁ > 1), the depth scales ξ_c = −1/ln χ of the deterministic and LRT surrogates (theory.depth_scale), and
the critical line σ_m²_crit(σ_b²) where χ₁ = 1 (theory.critical_sigma_m2). σ_b² runs on a log scale: the line
bends from σ_m² = π/4 at σ_b² = 0 (for φ = erf) toward 1 within σ_b² ≲ 0.05. Plain torch.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from matplotlib.colors import LogNorm, TwoSlopeNorm
from omegaconf import DictConfig, OmegaConf

from common.plotting import plt
from papers.binary_surrogates.theory import chi1, critical_sigma_m2, depth_scale

Tensor = torch.Tensor


def plane(phase: DictConfig) -> tuple[Tensor, Tensor]:
    """σ_m² (points in (0, 1)) and σ_b² (log-spaced, min to max), float64."""
    sigma_m2 = torch.linspace(0, 1, phase.sigma_m2_points + 2, dtype=torch.float64)[1:-1]
    sigma_b2 = torch.logspace(math.log10(phase.sigma_b2_min), math.log10(phase.sigma_b2_max), phase.sigma_b2_points,
                              dtype=torch.float64)
    return sigma_m2, sigma_b2


def run_phase_diagram(cfg: DictConfig, figure_dir: Path) -> dict[str, float]:
    """χ₁ and ξ_c over the plane, the critical lines, and the claim metrics at σ_b² = theory.sigma_b2.

    With trainer.fast_dev_run (a bug check, not a result): a 4 × 3 plane.
    """
    phase, phi, sigma_b2 = cfg.phase, cfg.theory.phi, cfg.theory.sigma_b2
    if cfg.trainer.fast_dev_run:
        phase = OmegaConf.merge(phase, {"sigma_m2_points": 4, "sigma_b2_points": 3})
    sm, sb = plane(phase)
    grid_m, grid_b = torch.meshgrid(sm, sb, indexing="xy")  # (σ_b², σ_m²): rows are σ_b²
    chi = chi1(grid_m, grid_b, phi=phi)
    xi = {s: depth_scale(grid_m, grid_b, s, phi=phi) for s in ("deterministic", "lrt")}
    line = {s: critical_sigma_m2(sb, s, phi=phi) for s in ("deterministic", "lrt")}
    critical = critical_sigma_m2(sigma_b2, phi=phi)
    _plot(sm, sb, chi, xi, line, phi, figure_dir / "phase_diagram.png")
    return {
        "critical_sigma_m2": critical.item(),
        "chi1_at_critical": chi1(critical, sigma_b2, phi=phi).item(),
        "critical_sigma_m2_min_on_line": line["deterministic"].nan_to_num(math.inf).min().item(),
        "lrt_critical_fraction": line["lrt"].isfinite().double().mean().item(),
        "ordered_fraction": (chi < 1).double().mean().item(),
    }


def _plot(sm: Tensor, sb: Tensor, chi: Tensor, xi: dict[str, Tensor], line: dict[str, Tensor], phi: str,
          path: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = ((chi, "χ₁, deterministic (ordered < 1 < chaotic)", TwoSlopeNorm(1.0, 0.0, max(chi.max().item(), 1.01)),
               "RdBu_r"), (xi["deterministic"], "ξ_c, deterministic", LogNorm(0.3, 1e3), "viridis"),
              (xi["lrt"], "ξ_c, LRT", LogNorm(0.3, 1e3), "viridis"))
    for ax, (values, title, norm, cmap) in zip(axes, panels, strict=True):
        image = ax.pcolormesh(sm, sb, values.clamp(max=1e3), norm=norm, cmap=cmap, shading="nearest")
        if "deterministic" in title:
            ax.plot(line["deterministic"], sb, c="black", lw=1.5, label="critical line (χ₁ = 1)")
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("σ_m²")
        ax.set_ylabel("σ_b²")
        ax.set_title(title, fontsize=9)
        fig.colorbar(image, ax=ax)
    axes[0].legend(fontsize=7, loc="lower left")
    lrt = "none" if not line["lrt"].isfinite().any() else f"σ_m² from {line['lrt'].nanmin().item():.3f}"
    axes[2].text(0.03, 0.95, f"critical points with σ_m² ≤ 1: {lrt}", transform=axes[2].transAxes, fontsize=7,
                 va="top", color="white")
    fig.suptitle(f"mean-field phase diagram of the surrogates, φ = {phi}", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
