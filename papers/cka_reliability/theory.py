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
