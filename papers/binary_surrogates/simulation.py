"""Signal propagation in random deterministic surrogates against the mean-field maps (Stamatescu et al. 2020:
simulated q^ℓ, c^ℓ against the maps).

Two inputs enter a random surrogate of width N as means of ±1 neurons, x̄ = φ(h⁰) with fields h⁰_a, h⁰_b of
variance q⁰ and correlation c⁰ (every unit independent). Each layer draws fresh weight means M = ±σ_m and
biases b ~ N(0, σ_b²) (layers.py), and every realisation is a new network. Per realisation and layer,

    q̂^ℓ = (1/2N) Σ_i (h_ai² + h_bi²),      ĉ^ℓ = Σ_i h_ai h_bi / √(Σ_i h_ai² Σ_i h_bi²),

against q^ℓ = q_map(q^{ℓ−1}), c^ℓ = c_map(c^{ℓ−1}, q^{ℓ−1}) from (q⁰, c⁰) (theory.py). The test of agreement:
t = (mean − map) / (standard error over R realisations), two-sided Student-t p-value with R − 1 degrees of
freedom, Bonferroni-corrected over every (σ_m², layer, quantity) compared. Plain torch, float64.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from scipy import stats

from common.plotting import plt
from papers.binary_surrogates.layers import DeterministicSurrogateLinear
from papers.binary_surrogates.theory import c_map, mean_function, q_map

Tensor = torch.Tensor


def correlated_pair(cells: int, width: int, q0: float, c0: float, gen: torch.Generator,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """(cells, 2, width): two Gaussian vectors with variance q0 and correlation c0, per cell."""
    z1, z2 = torch.randn(2, cells, width, generator=gen, dtype=dtype)
    return math.sqrt(q0) * torch.stack([z1, c0 * z1 + math.sqrt(1 - c0 * c0) * z2], 1)


def field_statistics(fields: list[Tensor]) -> tuple[Tensor, Tensor]:
    """q̂^ℓ (mean square of both inputs' fields) and ĉ^ℓ (their cosine) per layer and cell, from fields
    (..., cells, 2, N) per layer: two (layers, cells), float64."""
    q = torch.stack([h.double().square().mean((-2, -1)) for h in fields])
    c = torch.stack([torch.cosine_similarity(h[..., 0, :].double(), h[..., 1, :].double(), -1) for h in fields])
    return q, c


def simulate(sigma_m2: float, sigma_b2: float, sim: DictConfig, phi: str, seed: int) -> tuple[Tensor, Tensor]:
    """q̂^ℓ and ĉ^ℓ, each (realisations, layers), of random deterministic surrogates (module docstring).

    The realisations run side by side as the cells of one layer (layers.py), `sim.chunk` at a time, and each
    layer redraws that layer's parameters, so memory holds chunk × N² weight means, never a whole network.
    """
    gen = torch.Generator().manual_seed(seed)
    f = mean_function(phi).fn
    q, c = [], []
    for start in range(0, sim.realisations, sim.chunk):
        cells = min(sim.chunk, sim.realisations - start)
        h = correlated_pair(cells, sim.width, sim.q0, sim.c0, gen, torch.float64)
        layer = DeterministicSurrogateLinear(sim.width, sim.width, cells=cells, weight_map="clip").double()
        fields = []
        for _ in range(sim.layers):
            layer.reset_parameters(sigma_m2, sigma_b2, gen)
            with torch.no_grad():
                h = layer(f(h))  # (cells, 2, N)
            fields.append(h)
        q_hat, c_hat = field_statistics(fields)
        q.append(q_hat.T)
        c.append(c_hat.T)
    return torch.cat(q), torch.cat(c)


def map_trajectory(sigma_m2: float, sigma_b2: float, sim: DictConfig, phi: str) -> tuple[Tensor, Tensor]:
    """(q^ℓ, c^ℓ) for ℓ = 1..layers by iterating the maps from (q⁰, c⁰)."""
    q, c = torch.tensor(sim.q0, dtype=torch.float64), torch.tensor(sim.c0, dtype=torch.float64)
    qs, cs = [], []
    for _ in range(sim.layers):
        q, c = q_map(q, sigma_m2, sigma_b2, phi=phi), c_map(c, q, sigma_m2, sigma_b2, phi=phi)
        qs.append(q)
        cs.append(c)
    return torch.stack(qs), torch.stack(cs)


def agreement(samples: Tensor, expected: Tensor) -> tuple[Tensor, Tensor]:
    """|t| and two-sided p-values of mean(samples over axis 0) = expected, Student-t with R − 1 dof."""
    r = samples.shape[0]
    t = (samples.mean(0) - expected) / (samples.std(0) / math.sqrt(r))
    return t.abs(), torch.from_numpy(2 * stats.t.sf(t.abs().numpy(), r - 1))


def run_simulation(cfg: DictConfig, figure_dir: Path) -> dict[str, float]:
    """Simulated against predicted (q^ℓ, c^ℓ) for every σ_m² of `simulation.sigma_m2`; metrics and figure.

    With trainer.fast_dev_run (a bug check, not a result): width 50, 3 realisations, 3 layers.
    """
    sim, phi, sigma_b2 = cfg.simulation, cfg.theory.phi, cfg.theory.sigma_b2
    if cfg.trainer.fast_dev_run:
        sim = OmegaConf.merge(sim, {"width": 50, "realisations": 3, "layers": 3})
    curves, t_values, p_values = {}, [], []
    for i, sigma_m2 in enumerate(sim.sigma_m2):
        q, c = simulate(sigma_m2, sigma_b2, sim, phi, cfg.seed + i)
        q_theory, c_theory = map_trajectory(sigma_m2, sigma_b2, sim, phi)
        for samples, expected in ((q, q_theory), (c, c_theory)):
            t, p = agreement(samples, expected)
            t_values.append(t)
            p_values.append(p)
        curves[sigma_m2] = (q, c, q_theory, c_theory)
    t, p = torch.cat(t_values), torch.cat(p_values)
    _plot(curves, sim, sigma_b2, phi, figure_dir / "q_c_vs_maps.png")
    return {"sim_max_abs_t": t.max().item(), "sim_bonferroni_p": min(1.0, p.min().item() * len(p)),
            "sim_points": float(len(p)), "sim_realisations": float(sim.realisations)}


def _plot(curves: dict[float, tuple[Tensor, ...]], sim: DictConfig, sigma_b2: float, phi: str, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4))
    layers = torch.arange(1, sim.layers + 1)
    for k, (sigma_m2, (q, c, q_theory, c_theory)) in enumerate(curves.items()):
        for ax, samples, theory in ((axes[0], q, q_theory), (axes[1], c, c_theory)):
            mean, std = samples.mean(0), samples.std(0)
            ax.plot(layers, theory, c=f"C{k}", label=f"σ_m² = {sigma_m2:g}, map")
            ax.plot(layers, mean, "o", c=f"C{k}", ms=3, label=f"σ_m² = {sigma_m2:g}, simulated")
            ax.fill_between(layers, mean - std, mean + std, color=f"C{k}", alpha=0.2)
    axes[0].set_yscale("log")
    for ax, name in zip(axes, (r"$q^\ell$", r"$c^\ell$"), strict=True):
        ax.set_xlabel("layer ℓ")
        ax.set_ylabel(name)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"deterministic surrogate, φ = {phi}, σ_b² = {sigma_b2:g}: width {sim.width}, "
                 f"{sim.realisations} networks (band: ± one standard deviation)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
