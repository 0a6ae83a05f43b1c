"""The γ activation family of Geadah et al. (2020, 2024), Sec. "Activation family" of the note.

    γ(x; n, s) = (1 − s) · softplus_n(x) + s · sigmoid(n x),    softplus_n(x) = log(1 + e^{n x}) / n,

n > 0 the gain, s the saturation: s = 0 is a softplus (→ ReLU as n → ∞), s = 1 a sigmoid (→ Heaviside).
Two parameterisations of (n, s) (`rnn.parameterisation`): "raw", the authors' (n and s unconstrained: trained s
drifts slightly below 0), and "constrained" (n ≥ N_MIN, s ∈ [0, 1]: `constrain`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_MIN = 1e-2  # smallest gain of the constrained parameterisation: softplus_n(0) = log 2 / n stays bounded
PARAMETERISATIONS = ("constrained", "raw")


def gamma(x: Tensor, n: Tensor | float, s: Tensor | float) -> Tensor:
    """γ(x; n, s) = (1 − s) · log(1 + e^{n x}) / n + s · sigmoid(n x), elementwise with broadcasting.

    Stable for large |n x|: torch's softplus returns n x itself once n x > 20 (so softplus_n(x) = x there) and
    sigmoid saturates without overflow. Differentiable in x, n and s.
    """
    z = n * x
    return (1 - s) * F.softplus(z) / n + s * torch.sigmoid(z)


def gamma_slope(x: Tensor, n: Tensor | float, s: Tensor | float) -> Tensor:
    """∂γ/∂x = (1 − s) σ(n x) + s n σ(n x)(1 − σ(n x)): the diagonal of the hidden-state Jacobian."""
    p = torch.sigmoid(n * x)
    return (1 - s) * p + s * n * p * (1 - p)


def sup_slope(n: float, s: float) -> float:
    """sup_x ∂γ/∂x = (1 + s(n − 1))² / (4 n s) if s > 1/(n + 1), else 1 − s (reached as x → ∞).

    With p = σ(n x) ∈ (0, 1) the slope is (1 − s) p + s n p (1 − p), a parabola in p whose vertex
    p* = (1 + s(n − 1)) / (2 s n) lies inside (0, 1) exactly when s > 1/(n + 1).
    """
    if s > 1 / (n + 1):
        return (1 + s * (n - 1)) ** 2 / (4 * n * s)
    return 1 - s


def constrain(n: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """(n, s) clamped to n ≥ N_MIN, s ∈ [0, 1] (the constrained parameterisation)."""
    return n.clamp_min(N_MIN), s.clamp(0, 1)


class Gamma(nn.Module):
    """γ(·; n, s) with fixed n, s (the "fixed γ" network of the note, model 1)."""

    def __init__(self, n: float, s: float) -> None:
        super().__init__()
        self.n, self.s = n, s

    def forward(self, x: Tensor) -> Tensor:
        return gamma(x, self.n, self.s)

    def extra_repr(self) -> str:
        return f"n={self.n}, s={self.s}"
