"""Synthetic studies of Davari et al. 2023, Sec. 4.2 (Fig. 4a, b). Plain torch.

Translation (Fig. 4a): per seed, v ~ N(0, I) normalised (drawn first); cube A = U[−½, ½]^{n×d}, cube
B = U[−½, ½]^{n×d} + 1.1·e₁; only B moves by c·v. CKA(X, X') with X = [A; B], X' = [A; B + c v], for
linear CKA (with the closed-form limit of `theory.translation_limit`) and RBF CKA with bandwidth
m × median distance, m ∈ rbf_thresholds. No classifier is trained here (Fig. 4c, `translation.py`, scores one).

Invertible maps (Fig. 4b): the same cubes, Y = X M with M's entries N(μ, σ²), redrawn while
ill-conditioned (cond(M) > max_condition); CKA(X, Y) over a grid of (μ, σ). Y holds exactly the
information of X, yet CKA spans a wide range; its distribution depends on σ/μ only (M/μ has entries
N(1, (σ/μ)²) and CKA ignores isotropic scaling).

Every quantity is computed per seed (a fresh draw of the cubes, v and the maps): the run's per-example scores
(`outcomes.npz`) hold one value per seed for each of them, so that `measure` gives each its mean ± SE over seeds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from common.metrics.cka import cka
from common.outcomes import save_outcomes
from common.plotting import plt
from papers.cka_reliability.theory import translation_limit


def map_cell(mu: float, sigma: float) -> str:
    """The outcome name of one (μ, σ) cell of the Fig. 4b grid."""
    return f"map_cka_mu{mu:g}_sigma{sigma:g}"


def two_cubes(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """[A; B]: 2n points, A uniform in the unit cube around 0, B the same shifted by 1.1 along e₁."""
    a = torch.rand(n, d, generator=gen, dtype=torch.float64) - 0.5
    b = torch.rand(n, d, generator=gen, dtype=torch.float64) - 0.5
    b[:, 0] += 1.1
    return torch.cat([a, b])


def translation_curves(cfg: DictConfig) -> dict[str, torch.Tensor]:
    """CKA(X, X') against c for every kernel, (seeds × len(c)), plus the linear limit per seed."""
    cs = list(cfg.c_values)
    curves = {"linear": torch.zeros(cfg.seeds, len(cs))} | {
        f"rbf{m:g}": torch.zeros(cfg.seeds, len(cs)) for m in cfg.rbf_thresholds}
    limits = torch.zeros(cfg.seeds)
    for seed in range(cfg.seeds):
        gen = torch.Generator().manual_seed(seed)
        v = torch.randn(cfg.dim, generator=gen, dtype=torch.float64)
        v /= v.norm()
        x = two_cubes(cfg.points, cfg.dim, gen)
        moved = torch.arange(len(x)) >= cfg.points
        limits[seed] = translation_limit(x, moved)
        for i, c in enumerate(cs):
            x_moved = x + c * moved[:, None].double() * v
            curves["linear"][seed, i] = cka(x, x_moved)
            for m in cfg.rbf_thresholds:
                curves[f"rbf{m:g}"][seed, i] = cka(x, x_moved, kernel="rbf", threshold=m)
    return curves | {"limit": limits}


def invertible_map_grid(cfg: DictConfig) -> torch.Tensor:
    """CKA(X, X M) over the (μ, σ) grid for every seed: (seeds, len(mus), len(sigmas))."""
    grid = torch.zeros(cfg.seeds, len(cfg.map_mus), len(cfg.map_sigmas))
    for seed in range(cfg.seeds):
        gen = torch.Generator().manual_seed(1000 + seed)
        x = two_cubes(cfg.points, cfg.map_dim, gen)
        for i, mu in enumerate(cfg.map_mus):
            for j, sigma in enumerate(cfg.map_sigmas):
                while True:  # an invertible, well-conditioned map: no information is lost
                    m = mu + sigma * torch.randn(cfg.map_dim, cfg.map_dim, generator=gen, dtype=torch.float64)
                    if torch.linalg.cond(m) < cfg.max_condition:
                        break
                grid[seed, i, j] = cka(x, x @ m).item()
    return grid


def run_synthetic(cfg: DictConfig, figure_dir: Path) -> dict[str, float]:
    """Both studies: per-seed values into `outcomes.npz` (one entry per seed), their means as the run's metrics,
    and the two figures.

    With trainer.fast_dev_run (a bug check, not a result): one seed, 20 points of 5 dims per cube, the
    first two c values and a 2 × 2 map grid.
    """
    study = cfg.synthetic
    if cfg.trainer.fast_dev_run:
        study = OmegaConf.merge(study, {"seeds": 1, "points": 20, "dim": 5, "map_dim": 5,
                                        "c_values": study.c_values[:2], "map_mus": study.map_mus[:2],
                                        "map_sigmas": study.map_sigmas[:2]})
    curves = translation_curves(study)
    grid = invertible_map_grid(study)
    per_seed = {
        "linear_cka_at_max_c": curves["linear"][:, -1],
        "linear_cka_at_min_c": curves["linear"][:, 0],
        "linear_limit": curves["limit"],
        # the estimator at the largest c against the closed form, relative
        "limit_gap_at_max_c": (curves["linear"][:, -1] - curves["limit"]).abs() / curves["limit"],
    } | {f"rbf{m:g}_cka_at_max_c": curves[f"rbf{m:g}"][:, -1] for m in study.rbf_thresholds} | {
        map_cell(mu, sigma): grid[:, i, j] for i, mu in enumerate(study.map_mus)
        for j, sigma in enumerate(study.map_sigmas)}
    save_outcomes(figure_dir.parent, per_seed)
    mean_grid = grid.mean(0)
    _plot(study, curves, mean_grid, figure_dir)
    return {name: values.mean().item() for name, values in per_seed.items()} | {
        "map_cka_min": mean_grid.min().item(), "map_cka_max": mean_grid.max().item()}


def _plot(study: DictConfig, curves: dict[str, torch.Tensor], grid: torch.Tensor, figure_dir: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.5, 4))
    cs = list(study.c_values)
    for name, values in curves.items():
        if name == "limit":
            continue
        mean, std = values.mean(0), values.std(0) if len(values) > 1 else torch.zeros(len(cs))
        left.plot(cs, mean, marker="o", label=name.replace("rbf", "RBF, m = ") if name != "linear" else name)
        left.fill_between(cs, mean - std, mean + std, alpha=0.2)
    left.axhline(curves["limit"].mean(), ls="--", c="C0", label="linear, c → ∞ (Thm 1)")
    left.set_xlabel("translation c")
    left.set_ylabel("CKA(X, X')")
    left.set_ylim(0, 1.05)
    left.set_title("translating one cube (Fig. 4a)")
    left.legend(fontsize=8)
    image = right.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1)
    right.set_xticks(range(len(study.map_sigmas)), [f"{s:g}" for s in study.map_sigmas])
    right.set_yticks(range(len(study.map_mus)), [f"{m:g}" for m in study.map_mus])
    right.set_xlabel("σ")
    right.set_ylabel("μ")
    right.set_title("CKA(X, XM), M invertible (Fig. 4b)")
    fig.colorbar(image, ax=right)
    fig.tight_layout()
    fig.savefig(figure_dir / "synthetic.png", dpi=110)
    plt.close(fig)
