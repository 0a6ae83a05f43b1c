"""The translation limit of linear CKA (Davari et al. 2023, Theorem 1 and its corollary).

Let X ∈ R^{n×d} and X' = X + c · 1_M vᵀ: the m = |M| rows in the moved set M are translated by c·v.
For the (biased) linear CKA of Kornblith et al. (2019),

    CKA(X, X') = ‖X̄ᵀX̄'‖²_F / (‖X̄ᵀX̄‖_F ‖X̄'ᵀX̄'‖_F),   X̄ = X − 1 μᵀ (columns centred),

X̄' = X̄ + c u vᵀ with u = 1_M − (m/n) 1, and X̄ᵀu = Σ_{i∈M} x̄_i = m (μ_M − μ). As c → ∞ the c² terms
dominate: ‖X̄ᵀX̄'‖²_F = c² ‖X̄ᵀu‖² ‖v‖² + O(c) and ‖X̄'ᵀX̄'‖_F = c² ‖u‖² ‖v‖² + O(c), so

    lim_{c→∞} CKA(X, X') = ‖X̄ᵀu‖² / (‖u‖² ‖X̄ᵀX̄‖_F) = m ‖μ_M − μ‖² / ((1 − m/n) ‖X̄ᵀX̄‖_F),

with μ_M the mean of the moved rows and μ the mean of all rows. The limit does not depend on the
direction v (only v ≠ 0 is needed): it is set by the moved fraction and by how far the moved subset's
mean sits from the global mean, relative to the spread of X. Assumptions: 0 < m < n, X not constant
(‖X̄ᵀX̄‖_F > 0). When μ_M = μ the limit is 0 (CKA decays like 1/c²). Moving every row (m = n) is a
global shift, which CKA ignores: the value stays 1 for every c.

The two cubes of Fig. 4a, b (`synthetic.two_cubes`): n points per cube in d dims, A ~ U[−½, ½]^d and B the same
shifted by g·e₁ (g = 1.1), N = 2n rows. Their column covariance is Σ = diag(a, b, …, b) with b = 1/12 (a uniform
coordinate) and a = b + g²/4 (the two cube centres ±g/2 apart along e₁). Sampling X moves both limits below by a
few per cent at the configured sizes; `two_cubes_limit` and `rank_one_map_limit` include it to first order in
1/n, with the expected squared norm of the biased sample covariance Σ̂

    E‖Σ̂‖²_F ≈ ‖Σ‖²_F + ((tr Σ)² − Σ_j Σ²_jj)/N + (d − 1)(1/80 − 1/144)/N

(an off-diagonal entry has variance Σ_jj Σ_kk / N; a diagonal one Var(x²)/N, 1/80 − 1/144 for a uniform one).
"""

from __future__ import annotations

import torch


def translation_limit(x: torch.Tensor, moved_mask: torch.Tensor) -> float:
    """lim_{c→∞} linear CKA(X, X + c·1_M vᵀ) (module docstring), for any direction v ≠ 0.

    x: (n, d) (or (n, ...), flattened); moved_mask: (n,) bool, the rows that move.
    """
    x = x.flatten(1).double()
    mask = moved_mask.bool()
    n, m = x.shape[0], int(mask.sum())
    if mask.shape != (n,):
        raise ValueError(f"moved_mask must be ({n},) like x's rows, got {tuple(mask.shape)}")
    if m == n:
        return 1.0  # a global shift: CKA is invariant to it
    if m == 0:
        raise ValueError("moved_mask selects no row: nothing is translated, there is no limit to take")
    centred = x - x.mean(0)
    spread = torch.linalg.matrix_norm(centred.T @ centred)
    if spread == 0:
        raise ValueError("x is constant: CKA is undefined")
    gap = (x[mask].mean(0) - x.mean(0)).square().sum()
    return float(m * gap / ((1 - m / n) * spread))


def _cube_covariance(dim: int, gap: float) -> tuple[float, float]:
    """(a, b): the column variances of the two cubes, along e₁ and along every other axis (module docstring)."""
    b = 1 / 12
    return b + gap ** 2 / 4, b


def _sample_covariance_sq_norm(points: int, dim: int, gap: float) -> float:
    """E‖Σ̂‖²_F of the two cubes' 2·points rows, to first order in 1/points (module docstring)."""
    a, b = _cube_covariance(dim, gap)
    rows = 2 * points
    squares, trace = a ** 2 + (dim - 1) * b ** 2, a + (dim - 1) * b
    return squares + (trace ** 2 - squares) / rows + (dim - 1) * (1 / 80 - 1 / 144) / rows


def two_cubes_limit(points: int, dim: int, gap: float = 1.1) -> float:
    """The Theorem 1 limit for the two cubes when cube B moves (Fig. 4a), expected over the cubes' draw.

    With m = n of N = 2n rows moved, the limit is ‖μ_B − μ‖² / ‖Σ̂‖_F, and μ_B − μ = (μ_B − μ_A)/2 has
    E‖μ_B − μ‖² = g²/4 + d/(24 n) (each coordinate of a cube mean has variance 1/(12 n)):

        lim ≈ (g²/4 + d/(24 n)) / √E‖Σ̂‖²_F.

    As n → ∞: (g²/4) / √(a² + (d − 1) b²), which falls like 1/√d: 0.33 at 500 points in 100 dims (smoke),
    0.112 at 10,000 points in 1,000 dims (the paper's Fig. 4a setting).
    """
    return (gap ** 2 / 4 + dim / (24 * points)) / _sample_covariance_sq_norm(points, dim, gap) ** 0.5


def rank_one_map_limit(points: int, dim: int, gap: float = 1.1) -> float:
    """lim_{σ/μ → 0} linear CKA(X, X M) for M_ij ~ N(μ, σ²) on the two cubes (Fig. 4b), expected over the cubes.

    M/μ → 11ᵀ, so X M → μ (X1)1ᵀ, whose Gram is that of the single feature y = X1, and

        CKA(X, X1) = ‖Σ̂1‖² / (‖Σ̂‖_F · 1ᵀΣ̂1),   E‖Σ̂1‖² ≈ ‖Σ1‖² + (tr Σ)²/N,   E 1ᵀΣ̂1 = 1ᵀΣ1 (to first order).

    As n → ∞: √(a² + (d − 1) b²) / (a + (d − 1) b) ≈ 1/√d: 0.160 at 500 points per cube in 50 dims (smoke),
    0.046 at 10,000 points in 500 dims (the paper's smallest Fig. 4b value is 0.05). Any information-preserving
    M close to rank one gives it: CKA sees the one dominant direction of XM, not the invertibility of M.
    """
    a, b = _cube_covariance(dim, gap)
    squares, trace = a ** 2 + (dim - 1) * b ** 2, a + (dim - 1) * b
    return (squares + trace ** 2 / (2 * points)) / (_sample_covariance_sq_norm(points, dim, gap) ** 0.5 * trace)
