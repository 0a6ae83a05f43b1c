"""Mean-field theory of binary-network surrogates (Stamatescu et al. 2020): quadrature against closed forms and
Monte Carlo, fixed points, criticality, depth scales, and the maps against wide random networks."""

from __future__ import annotations

import math

import pytest
import torch

from papers.binary_surrogates import theory
from papers.binary_surrogates.gaussian import erf_pair_mean, erf_slope_pair_mean, gauss_mean, gauss_pair_mean
from papers.binary_surrogates.layers import DeterministicBinaryNetwork, SurrogateNetwork, binary_sign
from papers.binary_surrogates.simulation import correlated_pair, field_statistics

F64 = torch.float64
PHIS = sorted(theory.PHIS)
CASES = [(s, p) for s in theory.SURROGATES for p in PHIS]
# Monte Carlo tolerance in standard errors. With R realisations the studentised error of a mean follows t with
# R − 1 degrees of freedom; for R = 8, P(|t| > 6) ≈ 5e-4 per comparison. With 1e5 iid samples (z-test),
# P(|z| > 5) ≈ 6e-7.
T_SE, Z_SE = 6.0, 5.0


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


@pytest.mark.parametrize("a", [1 / math.sqrt(2), 1.0])
def test_quadrature_matches_the_erf_closed_forms(a: float) -> None:
    q, c = t(0.01, 0.3, 1.0, 2.0), t(-0.9, 0.0, 0.5, 0.99, 1.0)[:, None]
    phi, slope = theory.erf_mean_function(a).fn, theory.erf_mean_function(a).slope
    assert torch.allclose(gauss_pair_mean(phi, phi, q, c), erf_pair_mean(q, c, a), rtol=0, atol=1e-12)
    assert torch.allclose(gauss_pair_mean(slope, slope, q, c), erf_slope_pair_mean(q, c, a), rtol=0, atol=1e-12)
    assert torch.allclose(gauss_mean(lambda u: phi(u).square(), q), erf_pair_mean(q, torch.ones_like(q), a),
                          rtol=0, atol=1e-12)


def test_tanh_quadrature_against_a_fine_trapezoid_rule() -> None:
    """tanh has no closed form: check Gauss–Hermite against an independent rule, the trapezoid rule on a fine
    grid (geometrically convergent for these analytic, Gaussian-damped integrands)."""
    mf = theory.PHIS["tanh"]
    for q in (0.5, 2.0, 5.0):
        u = torch.linspace(-12 * math.sqrt(q), 12 * math.sqrt(q), 200_001, dtype=F64)
        weight = torch.exp(-u.square() / (2 * q)) / math.sqrt(2 * math.pi * q) * (u[1] - u[0])
        for slope, f in [(False, mf.fn), (True, mf.slope)]:
            reference = f(u).square() @ weight
            assert abs(theory.second_moment(t(q), mf, slope) - reference) < 1e-10
    q, c = 1.0, 0.6  # 2-D, on a product grid in (z₁, z₂)
    z = torch.linspace(-10, 10, 2001, dtype=F64)
    weight = torch.exp(-z.square() / 2) / math.sqrt(2 * math.pi) * (z[1] - z[0])
    ua, ub = math.sqrt(q) * z[:, None], math.sqrt(q) * (c * z[:, None] + math.sqrt(1 - c * c) * z)
    for slope, f in [(False, mf.fn), (True, mf.slope)]:
        reference = weight @ (f(ua) * f(ub)) @ weight
        assert abs(theory.pair_mean(t(q), t(c), mf, slope) - reference) < 1e-10


@pytest.mark.parametrize("phi", PHIS)
def test_pair_means_against_monte_carlo(phi: str) -> None:
    """Closed forms (sign, erf) and quadrature (tanh) against 1e5 Gaussian pairs."""
    gen = torch.Generator().manual_seed(0)
    mf = theory.PHIS[phi]
    for q, c in [(0.5, 0.3), (2.0, 0.9), (1.0, -0.6)]:
        z1, z2 = torch.randn(2, 100_000, generator=gen, dtype=F64)
        ua, ub = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
        for slope, f in [(False, mf.fn), (True, mf.slope)]:
            samples = f(ua) * f(ub)
            expected = theory.pair_mean(t(q), t(c), mf, slope=slope)
            assert abs(samples.mean() - expected) < Z_SE * samples.std() / math.sqrt(len(samples))


@pytest.mark.parametrize("phi", PHIS)
def test_pair_mean_limit_identities(phi: str) -> None:
    mf, q = theory.PHIS[phi], t(0.05, 0.7, 2.0)
    assert theory.pair_mean(q, torch.zeros_like(q), mf).abs().max() < 1e-15  # φ is odd
    assert torch.allclose(theory.pair_mean(q, torch.ones_like(q), mf), theory.second_moment(q, mf), atol=1e-13)
    assert torch.allclose(theory.pair_mean(q, torch.ones_like(q), mf, slope=True),
                          theory.second_moment(q, mf, slope=True), atol=1e-13)
    # Price's theorem: ∂/∂c E φ(u_a)φ(u_b) = q E φ'(u_a)φ'(u_b)
    c, h = t(0.3), 1e-5
    numeric = (theory.pair_mean(q, c + h, mf) - theory.pair_mean(q, c - h, mf)) / (2 * h)
    assert torch.allclose(numeric, q * theory.pair_mean(q, c, mf, slope=True), rtol=1e-7)


SIGMA_M2 = t(0.0, 0.3, 0.7, 0.9, 1.0)[:, None]
SIGMA_B2 = t(0.0, 1e-3, 0.1, 1.0)


@pytest.mark.parametrize(("surrogate", "phi"), CASES)
def test_q_star_is_a_stable_fixed_point(surrogate: str, phi: str) -> None:
    q = theory.q_star(SIGMA_M2, SIGMA_B2, surrogate, phi)
    assert q.shape == (5, 4) and q.dtype == F64
    assert torch.allclose(theory.q_map(q, SIGMA_M2, SIGMA_B2, surrogate, phi), q, rtol=1e-12, atol=1e-14)
    above, below = 1.1 * q + 1e-3, 0.9 * q
    assert (theory.q_map(above, SIGMA_M2, SIGMA_B2, surrogate, phi) < above).all()
    positive = q > 1e-9
    assert (theory.q_map(below, SIGMA_M2, SIGMA_B2, surrogate, phi) > below)[positive].all()


def test_lrt_variance_is_one_plus_bias_variance() -> None:
    q = theory.q_map(t(0.1, 1.0, 7.0), 0.8, 0.3, "lrt")
    assert torch.equal(q, t(1.3, 1.3, 1.3)) and torch.equal(theory.q_star(0.8, 0.3, "lrt"), t(1.3)[0])


@pytest.mark.parametrize(("surrogate", "phi"), CASES)
def test_chi1_is_the_slope_of_the_c_map_at_one(surrogate: str, phi: str) -> None:
    sm, sb = t(0.3, 0.7, 1.0)[:, None], t(1e-3, 0.03, 0.1)
    q = theory.q_star(sm, sb, surrogate, phi)
    chi = theory.chi1(sm, sb, surrogate, phi)
    one = torch.ones_like(q)
    assert torch.allclose(theory.c_map_slope(one, q, sm, sb, surrogate, phi), chi, rtol=1e-12)
    h = 1e-5
    numeric = (theory.c_map(one, q, sm, sb, surrogate, phi) - theory.c_map(one - h, q, sm, sb, surrogate, phi)) / h
    assert torch.allclose(numeric, chi, rtol=1e-4)
    if surrogate == "deterministic":
        assert torch.allclose(theory.c_map(one, q, sm, sb, surrogate, phi), one, rtol=0, atol=1e-14)  # fixed point
    else:
        assert (theory.c_map(one, q, sm, sb, surrogate, phi) < 1).all()  # independent noise decorrelates


def test_critical_line_of_the_erf_surrogate() -> None:
    sb = t(0.0, 1e-4, 1e-3, 0.1, 1.0)
    s = theory.critical_sigma_m2(sb)
    assert s[0] == pytest.approx(math.pi / 4, abs=1e-15)
    assert (s.diff() > 0).all() and (s < 1).all()  # rising towards σ_m² = 1
    assert (theory.chi1(s, sb) - 1).abs().max() < 1e-8
    assert (theory.depth_scale(s, sb) > 1e6).all()  # ξ_c diverges on the critical line
    gap = (1 - s) / 2  # room on the chaotic side below σ_m² = 1
    assert (theory.depth_scale(s - 1e-2, sb) < theory.depth_scale(s - 1e-4, sb)).all()  # ordered side
    assert (theory.depth_scale(s + gap, sb) < theory.depth_scale(s + gap / 100, sb)).all()  # chaotic side


def test_critical_points_of_the_other_mean_functions() -> None:
    assert float(theory.critical_sigma_m2(0.0, phi="tanh")) == pytest.approx(1, abs=1e-12)  # only the corner (1, 0)
    assert abs(theory.chi1(1.0, 0.0, phi="tanh") - 1) < 1e-8
    assert theory.critical_sigma_m2(t(1e-3, 0.1, 1.0), phi="tanh").isnan().all()
    assert theory.critical_sigma_m2(t(0.0, 1e-3, 0.1, 1.0), phi="sign").isnan().all()
    # sign: always ordered, χ₁ ≤ 2σ_m²/π (the slope at q* = 0 bounds it)
    chi = theory.chi1(SIGMA_M2, SIGMA_B2, phi="sign")
    assert (chi <= 2 * SIGMA_M2 / math.pi + 1e-15).all() and (chi < 1).all()
    for phi in PHIS:  # LRT: χ₁ = 1 would need σ_m² > 1
        assert theory.critical_sigma_m2(t(0.0, 0.1, 1.0), "lrt", phi).isnan().all()


@pytest.mark.parametrize(("surrogate", "phi"), CASES)
def test_depth_scale_is_set_by_the_slope_at_the_stable_fixed_point(surrogate: str, phi: str) -> None:
    sm, sb = t(0.2, 0.6, 0.95, 1.0)[:, None], t(1e-3, 0.05, 0.5)
    q, c = theory.q_star(sm, sb, surrogate, phi), theory.c_star(sm, sb, surrogate, phi)
    assert torch.allclose(theory.c_map(c, q, sm, sb, surrogate, phi), c, rtol=0, atol=1e-12)
    slope = theory.c_map_slope(c, q, sm, sb, surrogate, phi)
    assert (slope < 1).all()  # stable
    xi = theory.depth_scale(sm, sb, surrogate, phi)
    assert xi.isfinite().all() and (xi > 0).all()
    chi = torch.where(c == 1, theory.chi1(sm, sb, surrogate, phi), slope)
    assert torch.allclose(xi, -1 / chi.log(), rtol=1e-12)
    scalar = theory.depth_scale(float(sm[2, 0]), float(sb[1]), surrogate, phi)  # a scalar call, the same value
    assert scalar.shape == () and float(scalar) == pytest.approx(float(xi[2, 1]), rel=1e-12)


def test_chaotic_depth_scale_measures_the_decay_of_the_correlation() -> None:
    sm, sb = 1.0, 1e-3
    assert theory.chi1(sm, sb) > 1  # chaotic: c* < 1
    q, c_star, xi = theory.q_star(sm, sb), theory.c_star(sm, sb), theory.depth_scale(sm, sb)
    assert 0 < c_star < 1 and 1 < xi < 100
    c = c_star + 1e-4
    gaps = []
    for _ in range(30):
        c = theory.c_map(c, q, sm, sb)
        gaps.append(c - c_star)
    decay = gaps[-1] / gaps[-2]
    assert float(-1 / decay.log()) == pytest.approx(float(xi), rel=1e-3)  # |c^ℓ − c*| ~ e^{−ℓ/ξ_c}


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown surrogate"):
        theory.q_star(0.5, 0.1, surrogate="stochastic")
    with pytest.raises(ValueError, match="unknown phi"):
        theory.chi1(0.5, 0.1, phi="relu")
    with pytest.raises(ValueError, match="sigma_b2 must lie"):
        theory.depth_scale(0.5, -0.1)
    with pytest.raises(ValueError, match="sigma_m2 must lie"):
        theory.q_map(1.0, t(0.5, 1.2), 0.1)
    with pytest.raises(ValueError, match="c must lie"):
        theory.c_map(1.5, 1.0, 0.5, 0.1)
    with pytest.raises(ValueError, match="q must lie"):
        theory.c_map(0.5, -1.0, 0.5, 0.1)
    with pytest.raises(ValueError, match="sigma_b2 must lie"):
        theory.critical_sigma_m2(-1.0)


def test_binary_c_map_identities() -> None:
    c = t(-1.0, -0.3, 0.0, 0.4, 1.0)
    assert torch.allclose(theory.binary_c_map(c), 2 / math.pi * torch.asin(c))
    assert torch.equal(theory.binary_c_map(t(0.0, 1.0)), t(0.0, 1.0))  # fixed points; c = 1 is unstable
    assert torch.allclose(theory.binary_c_map(c, 0.5), (2 / math.pi * torch.asin(c) + 0.5) / 1.5)


def studentised_within(samples: torch.Tensor, expected: torch.Tensor, k: float) -> bool:
    """|mean − expected| ≤ k standard errors, the last axis of `samples` holding the realisations."""
    se = samples.std(-1) / math.sqrt(samples.shape[-1])
    return bool(((samples.mean(-1) - expected).abs() <= k * se + 1e-12).all())


@pytest.mark.parametrize("surrogate", theory.SURROGATES)
def test_wide_random_surrogate_follows_the_maps(surrogate: str) -> None:
    """Width 1000, 8 realisations per σ_m² (the paper's 0.2, 0.5, 0.99 at σ_b² = 0.001), run as one batched
    network of 24 cells; q̂^ℓ and ĉ^ℓ against the iterated maps within T_SE standard errors."""
    width, depth, reps, sb, q0, c0 = 1000, 5, 8, 1e-3, 1.0, 0.5
    sm = t(0.2, 0.5, 0.99)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)  # the LRT noise
    net = SurrogateNetwork([width] * (depth + 1), surrogate=surrogate, sigma_m2=sm.repeat_interleave(reps),
                           sigma_b2=sb, cells=3 * reps, binary_input=True, generator=gen)
    h0 = correlated_pair(3 * reps, width, q0, c0, gen)
    with torch.no_grad():
        q_hat, c_hat = field_statistics(net.fields(net.phi(h0)))
    q, c = torch.full((3,), q0, dtype=F64), torch.full((3,), c0, dtype=F64)
    for layer in range(depth):
        q, c = theory.q_map(q, sm, sb, surrogate), theory.c_map(c, q, sm, sb, surrogate)
        assert studentised_within(q_hat[layer].reshape(3, reps), q, T_SE), (layer, q_hat[layer], q)
        assert studentised_within(c_hat[layer].reshape(3, reps), c, T_SE), (layer, c_hat[layer], c)


def test_random_binary_network_follows_the_arcsine_map() -> None:
    """W = sign(M) of a random surrogate is a random ±1 network: ĉ^ℓ against ((2/π) arcsin c + σ_b²)/(1 + σ_b²),
    and q̂^ℓ = 1 + σ_b², over 8 realisations at width 1000 for σ_b² = 0 and 0.3."""
    width, depth, reps, c0 = 1000, 4, 8, 0.9
    sb = t(0.0, 0.3)
    gen = torch.Generator().manual_seed(1)
    surrogate = SurrogateNetwork([width] * (depth + 1), sigma_m2=0.5, sigma_b2=sb.repeat_interleave(reps),
                                 cells=2 * reps, generator=gen)
    x = binary_sign(correlated_pair(2 * reps, width, 1.0, c0, gen))  # inputs with correlation (2/π) arcsin c0
    q_hat, c_hat = field_statistics(DeterministicBinaryNetwork(surrogate).fields(x))
    c = t(c0, c0)
    for layer in range(depth):
        c = theory.binary_c_map(c, sb)
        assert studentised_within(c_hat[layer].reshape(2, reps), c, T_SE), (layer, c_hat[layer], c)
        assert studentised_within(q_hat[layer].reshape(2, reps), 1 + sb, T_SE), (layer, q_hat[layer])
