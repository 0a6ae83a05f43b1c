"""Mean-field signal propagation in continuous surrogates of binary networks (Stamatescu et al., ICLR 2020).

Setting (paper: the mean-field theory of the surrogates). Weight means
M_ij are iid with mean 0 and second moment σ_m² = E M_ij² ≤ 1 (only the second moment enters), biases have
variance σ_b², the width N → ∞, and q^ℓ is the variance of a layer's field h^ℓ, c^ℓ the correlation of the
fields of two inputs of equal variance. The surrogates (layers.py) are

    deterministic:  h_i = (N^{-1/2} Σ_j M_ij φ(h_j) + b_i) / √(N^{-1} Σ_j (1 − M_ij² φ²(h_j))),
    LRT:            h_i = N^{-1/2} Σ_j M_ij φ(h_j) + b_i + ε_i √(N^{-1} Σ_j (1 − M_ij² φ²(h_j))),
                    ε_i ~ N(0, 1) drawn independently for every input.

Mean function φ: the mean of a ±1 neuron x = sign(h + ε) given its standardised field h, so the noise ε
fixes φ (note, "Conventions"):

    "sign": φ(h) = erf(h/√2),  ε ~ N(0, 1)           (the exact CLT mean of a sign neuron; no critical line)
    "erf":  φ(h) = erf(h),     ε ~ N(0, 1/2)         (critical line from σ_m² = π/4 at σ_b² = 0 towards 1)
    "tanh": φ(h) = tanh(h),    ε ~ Logistic(0, 1/2)  (critical only at the corner (σ_m², σ_b²) = (1, 0))

The default is "erf" (Gaussian neuron noise). Of the three, only it gives the deterministic surrogate a
critical line, an order-to-chaos transition, as the paper's findings need (critical initialisations exist for
the deterministic surrogate, with weight means near ±1): the line runs close to σ_m² = 1 once σ_b² ≳ 0.05
(σ_m² ≈ 0.967 at σ_b² = 0.1, 0.998 at σ_b² = 1) and bends down to π/4 only as σ_b² → 0. "erf" and "tanh"
are steeper at 0 than the exact sign mean, so no neuron noise added to the weights' own noise realises them.

Depth scale: |c^ℓ − c*| ~ e^{−ℓ/ξ_c} with ξ_c = −1/ln χ, χ the slope of the c-map at its stable fixed
point c*: c* = 1 and χ = χ₁ in the ordered phase, c* < 1 in the chaotic phase and for the LRT surrogate,
whose c-map does not fix c = 1 because its noise is independent across inputs.

Every function broadcasts its numeric arguments and returns a float64 tensor (0-d for scalar arguments).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from common.linalg import lapack_threads
from papers.binary_surrogates.gaussian import (
    erf_pair_mean,
    erf_slope_pair_mean,
    gauss_mean,
    gauss_pair_mean,
)

Tensor = torch.Tensor
ArrayLike = float | Tensor | list | tuple  # anything torch.as_tensor takes, numpy arrays included
SURROGATES = ("deterministic", "lrt")
DEFAULT_PHI = "erf"


@dataclass(frozen=True)
class MeanFunction:
    """φ, its derivative φ', and the scale a when φ(h) = erf(a h) (which has closed-form moments)."""

    fn: Callable[[Tensor], Tensor]
    slope: Callable[[Tensor], Tensor]
    erf_scale: float | None = None


def erf_mean_function(a: float) -> MeanFunction:
    """φ(h) = erf(a h), φ'(h) = (2a/√π) e^{−a² h²}."""
    return MeanFunction(fn=lambda h: torch.special.erf(a * h),
                        slope=lambda h: (2 * a / math.sqrt(math.pi)) * torch.exp(-(a * h).square()),
                        erf_scale=a)


PHIS: dict[str, MeanFunction] = {
    "sign": erf_mean_function(1 / math.sqrt(2)),
    "erf": erf_mean_function(1.0),
    "tanh": MeanFunction(fn=torch.tanh, slope=lambda h: 1 - torch.tanh(h).square()),
}


def one_thread(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Run `fn` on one intra-op thread (common.linalg.lapack_threads, which serves any CPU work). The maps
    evaluate φ on many small float64 tensors, where MKL's threaded vector math (tanh, erf) costs more in
    hand-offs than it computes: a (12, 128) tanh took 8 ms on two threads of a busy 2-core VM, 9 µs on one."""
    @functools.wraps(fn)
    def run(*args, **kwargs) -> Tensor:
        with lapack_threads(torch.empty(0)):
            return fn(*args, **kwargs)
    return run


def mean_function(phi: str) -> MeanFunction:
    """The mean function named `phi` (module docstring), or a ValueError naming the valid ones."""
    if phi not in PHIS:
        raise ValueError(f"unknown phi {phi!r}: choose one of {sorted(PHIS)} (see the theory module docstring)")
    return PHIS[phi]


def _tensor(name: str, value: ArrayLike, low: float, high: float = math.inf) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool(((t >= low) & (t <= high)).all()):
        raise ValueError(f"{name} must lie in [{low}, {high}], got values from {t.min().item()} to {t.max().item()}")
    return t


def _check(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str, phi: str) -> tuple[Tensor, Tensor, MeanFunction]:
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}: choose one of {list(SURROGATES)}")
    # σ_m² = E M² with M = E S ∈ [−1, 1], so σ_m² ≤ 1: beyond it the variance terms 1 − M²φ² turn negative.
    return _tensor("sigma_m2", sigma_m2, 0.0, 1.0), _tensor("sigma_b2", sigma_b2, 0.0), mean_function(phi)


def pair_mean(q: Tensor, c: Tensor, phi: MeanFunction, slope: bool = False) -> Tensor:
    """E φ(u_a)φ(u_b) (or E φ'(u_a)φ'(u_b) with slope=True), u ~ N(0, q) with correlation c (gaussian.py)."""
    if phi.erf_scale is not None:
        return (erf_slope_pair_mean if slope else erf_pair_mean)(q, c, phi.erf_scale)
    f = phi.slope if slope else phi.fn
    return gauss_pair_mean(f, f, q, c)


def second_moment(q: Tensor, phi: MeanFunction, slope: bool = False) -> Tensor:
    """E φ²(u) (or E φ'²(u) with slope=True), u ~ N(0, q): the pair mean at c = 1, by 1-D quadrature."""
    if phi.erf_scale is not None:
        return pair_mean(q, torch.ones_like(q), phi, slope)
    f = phi.slope if slope else phi.fn
    return gauss_mean(lambda u: f(u).square(), q)


def _q_map(q: Tensor, sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    if surrogate == "lrt":
        return torch.broadcast_tensors(q, sm, 1 + sb)[2].clone()
    s = sm * second_moment(q, mf)
    return (s + sb) / (1 - s)


def _c_map_denominator(q: Tensor, sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    if surrogate == "lrt":
        return 1 + sb
    # E φ² by the same (2-D) rule as the numerator's E φ_aφ_b, so that c = 1 stays fixed to rounding
    return sm * pair_mean(q, torch.ones_like(q), mf) + sb


def _c_map(c: Tensor, q: Tensor, sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    return (sm * pair_mean(q, c, mf) + sb) / _c_map_denominator(q, sm, sb, surrogate, mf)


def _c_map_slope(c: Tensor, q: Tensor, sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    return sm * q * pair_mean(q, c, mf, slope=True) / _c_map_denominator(q, sm, sb, surrogate, mf)


@one_thread
def q_map(q: ArrayLike, sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
          phi: str = DEFAULT_PHI) -> Tensor:
    """Variance of the next layer's field given q = q^{ℓ−1}:

        deterministic: q^ℓ = (σ_m² E φ²(h) + σ_b²) / (1 − σ_m² E φ²(h)),   h ~ N(0, q^{ℓ−1}),
        LRT:           q^ℓ = σ_m² E φ²(h) + σ_b² + (1 − σ_m² E φ²(h)) = 1 + σ_b²   (for every q^{ℓ−1}).
    """
    sm, sb, mf = _check(sigma_m2, sigma_b2, surrogate, phi)
    return _q_map(_tensor("q", q, 0.0), sm, sb, surrogate, mf)


@one_thread
def c_map(c: ArrayLike, q: ArrayLike, sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
          phi: str = DEFAULT_PHI) -> Tensor:
    """Correlation of the next layer's fields given c = c^{ℓ−1} and both inputs at variance q = q^{ℓ−1}
    (paper eq. 13; at the fixed point q* the deterministic form equals [(1 + q*)/q*] (σ_m² E φ_aφ_b + σ_b²)/(1 + σ_b²)):

        deterministic: c^ℓ = (σ_m² E φ(h_a)φ(h_b) + σ_b²) / (σ_m² E φ²(h) + σ_b²),
        LRT:           c^ℓ = (σ_m² E φ(h_a)φ(h_b) + σ_b²) / (1 + σ_b²),

    (h_a, h_b) ~ N(0, q [[1, c], [c, 1]]). The deterministic map fixes c = 1; the LRT map does not.
    NaN where the deterministic fields vanish (q = 0 or σ_m² = 0, with σ_b² = 0): c is undefined there.
    """
    sm, sb, mf = _check(sigma_m2, sigma_b2, surrogate, phi)
    return _c_map(_tensor("c", c, -1.0, 1.0), _tensor("q", q, 0.0), sm, sb, surrogate, mf)


@one_thread
def c_map_slope(c: ArrayLike, q: ArrayLike, sigma_m2: ArrayLike, sigma_b2: ArrayLike,
                surrogate: str = "deterministic", phi: str = DEFAULT_PHI) -> Tensor:
    """∂c^ℓ/∂c^{ℓ−1} of `c_map`; by Price's theorem ∂/∂c E φ(h_a)φ(h_b) = q E φ'(h_a)φ'(h_b), so

        deterministic: σ_m² q E φ'(h_a)φ'(h_b) / (σ_m² E φ²(h) + σ_b²),
        LRT:           σ_m² q E φ'(h_a)φ'(h_b) / (1 + σ_b²).
    """
    sm, sb, mf = _check(sigma_m2, sigma_b2, surrogate, phi)
    return _c_map_slope(_tensor("c", c, -1.0, 1.0), _tensor("q", q, 0.0), sm, sb, surrogate, mf)


def _bisect(g: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, atol: float = 1e-30) -> Tensor:
    """The point where g turns from > 0 to ≤ 0 in [lo, hi] (given g(lo) ≥ 0 ≥ g(hi)), to rounding
    (or to atol near 0, where halving would otherwise run on into subnormal numbers)."""
    eps = torch.finfo(lo.dtype).eps
    while bool((hi - lo > torch.clamp(4 * eps * hi, min=atol)).any()):
        mid = (lo + hi) / 2
        up = g(mid) > 0
        lo, hi = torch.where(up, mid, lo), torch.where(up, hi, mid)
    return (lo + hi) / 2


def _bracket(g: Callable[[Tensor], Tensor], hi: Tensor, doublings: int = 200) -> Tensor:
    """Double hi until g(hi) ≤ 0 everywhere."""
    for _ in range(doublings):
        up = g(hi) > 0
        if not bool(up.any()):
            return hi
        hi = torch.where(up, 2 * hi, hi)
    raise RuntimeError("no sign change of g found below 2^200: the map has no finite fixed point")


def _q_star(sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    if surrogate == "lrt":
        return 1 + sb

    def excess(q: Tensor) -> Tensor:
        return _q_map(q, sm, sb, surrogate, mf) - q

    return _bisect(excess, torch.zeros_like(sm), _bracket(excess, 1 + sb))


def _chi1(q: Tensor, sm: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    slope = sm * second_moment(q, mf, slope=True)
    return slope if surrogate == "lrt" else slope / (1 - sm * second_moment(q, mf))


def _c_star(q: Tensor, chi: Tensor, sm: Tensor, sb: Tensor, surrogate: str, mf: MeanFunction) -> Tensor:
    c = torch.ones_like(q)
    todo = (chi > 1) if surrogate == "deterministic" else torch.ones_like(q, dtype=torch.bool)
    if bool(todo.any()):
        q, sm, sb = q[todo], sm[todo], sb[todo]
        x = torch.zeros_like(q)
        for _ in range(100):
            step = (_c_map(x, q, sm, sb, surrogate, mf) - x) / (1 - _c_map_slope(x, q, sm, sb, surrogate, mf))
            x = (x + step).clamp(0, 1)
            if bool((step.abs() <= 1e-15).all()):
                break
        c[todo] = x
    return c


def _broadcast_check(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str,
                     phi: str) -> tuple[Tensor, Tensor, MeanFunction]:
    sm, sb, mf = _check(sigma_m2, sigma_b2, surrogate, phi)
    return *torch.broadcast_tensors(sm, sb), mf


@one_thread
def q_star(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
           phi: str = DEFAULT_PHI) -> Tensor:
    """Stable fixed point q* = q_map(q*): where q_map(q) − q turns from positive to ≤ 0, by bisection
    (q* = 0 when σ_b² = 0 in the ordered phase; the unstable q = 0 is passed over in the chaotic one).
    LRT: q* = 1 + σ_b².
    """
    sm, sb, mf = _broadcast_check(sigma_m2, sigma_b2, surrogate, phi)
    return _q_star(sm, sb, surrogate, mf)


@one_thread
def chi1(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
         phi: str = DEFAULT_PHI) -> Tensor:
    """Slope of the c-map at c = 1, at q = q*:

        deterministic: χ₁ = σ_m² E φ'²(h) / (1 − σ_m² E φ²(h)),   h ~ N(0, q*)   (χ₁ < 1 ordered, > 1 chaotic),
        LRT:           χ₁ = σ_m² E φ'²(h),                       h ~ N(0, 1 + σ_b²).
    """
    sm, sb, mf = _broadcast_check(sigma_m2, sigma_b2, surrogate, phi)
    return _chi1(_q_star(sm, sb, surrogate, mf), sm, surrogate, mf)


@one_thread
def c_star(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
           phi: str = DEFAULT_PHI) -> Tensor:
    """Stable fixed point c* ∈ [0, 1] of c ↦ c_map(c, q*).

    Deterministic and χ₁ ≤ 1: c* = 1. Otherwise g(c) = c_map(c) − c is convex on [0, 1] (E φ(h_a)φ(h_b) has
    non-negative Mehler coefficients in c for odd φ), g(0) ≥ 0 and g(c*) = 0 with g'(c*) < 0, so Newton's
    method from c = 0 climbs monotonically to c* (c* = 0 when σ_b² = 0 and the map contracts at 0).
    """
    sm, sb, mf = _broadcast_check(sigma_m2, sigma_b2, surrogate, phi)
    q = _q_star(sm, sb, surrogate, mf)
    return _c_star(q, _chi1(q, sm, surrogate, mf), sm, sb, surrogate, mf)


@one_thread
def depth_scale(sigma_m2: ArrayLike, sigma_b2: ArrayLike, surrogate: str = "deterministic",
                phi: str = DEFAULT_PHI) -> Tensor:
    """ξ_c = −1 / ln χ with χ = ∂c^ℓ/∂c^{ℓ−1} at the stable fixed point c* (χ = χ₁ when c* = 1), so that
    |c^ℓ − c*| ~ e^{−ℓ/ξ_c}; ξ_c = ∞ where χ = 1 (criticality)."""
    sm, sb, mf = _broadcast_check(sigma_m2, sigma_b2, surrogate, phi)
    q = _q_star(sm, sb, surrogate, mf)
    chi = _chi1(q, sm, surrogate, mf)
    c = _c_star(q, chi, sm, sb, surrogate, mf)
    below = c < 1
    chi[below] = _c_map_slope(c[below], q[below], sm[below], sb[below], surrogate, mf)
    return torch.where(chi >= 1, math.inf, -1 / torch.log(chi))


@one_thread
def critical_sigma_m2(sigma_b2: ArrayLike, surrogate: str = "deterministic", phi: str = DEFAULT_PHI) -> Tensor:
    """σ_m² with χ₁(σ_m², σ_b²) = 1, NaN where none lies in [0, 1].

    Deterministic: χ₁ = 1 ⇔ σ_m² = 1 / (E φ'²(h) + E φ²(h)), h ~ N(0, q*). Parametrised by q the critical
    point is σ_m²(q) = 1 / (E φ'² + E φ²), σ_b²(q) = q − σ_m²(q) E φ² (1 + q) (the fixed-point condition);
    σ_b²(q) rises from 0 at q = 0, so q is found by bisection. Giving σ_m²(0) = 1/φ'(0)²: π/4 for "erf",
    1 for "tanh", π/2 > 1 for "sign" (no critical point: χ₁ < 1 throughout).
    LRT: σ_m² = 1 / E φ'²(h), h ~ N(0, 1 + σ_b²), above 1 for all three φ (no critical initialisation).
    """
    _, sb, mf = _check(0.0, sigma_b2, surrogate, phi)  # σ_m² is the unknown here
    if surrogate == "lrt":
        s = 1 / second_moment(1 + sb, mf, slope=True)
    else:
        def critical(q: Tensor) -> Tensor:
            return 1 / (second_moment(q, mf, slope=True) + second_moment(q, mf))

        def excess(q: Tensor) -> Tensor:  # σ_b² − σ_b²(q)
            return sb - (q - critical(q) * second_moment(q, mf) * (1 + q))

        hi = _bracket(excess, torch.ones_like(sb) + sb)
        # σ_b² = 0 ⇔ q = 0 exactly; bisection there would chase rounding, since σ_b²(q) = O(q³) for tanh.
        s = critical(torch.where(sb == 0, 0.0, _bisect(excess, torch.zeros_like(sb), hi)))
    # s is exactly 1 at the tanh corner; quadrature weights sum to 1 only to rounding, hence the 1e-12.
    return torch.where(s <= 1 + 1e-12, s, math.nan)


def binary_c_map(c: ArrayLike, sigma_b2: ArrayLike = 0.0) -> Tensor:
    """Random binary network (weights ±1 iid, sign neurons, biases of variance σ_b²): correlation of the next
    fields, c^ℓ = ((2/π) arcsin c^{ℓ−1} + σ_b²) / (1 + σ_b²), since E sign(h_a) sign(h_b) = (2/π) arcsin c and
    q = 1 + σ_b² at every layer. Its slope diverges at c = 1: the binary network is always chaotic."""
    c, sb = _tensor("c", c, -1.0, 1.0), _tensor("sigma_b2", sigma_b2, 0.0)
    return ((2 / math.pi) * torch.asin(c) + sb) / (1 + sb)
