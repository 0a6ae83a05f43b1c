"""Measured values and their intervals, against independent derivations (scipy, closed forms, Monte Carlo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from common.stats import (
    Z95,
    Measured,
    difference,
    exact,
    max_of,
    mean_of_scores,
    mean_over,
    min_of,
    paired_difference,
    proportion,
)


def test_mean_over_seeds_uses_student_t() -> None:
    values = [0.81, 0.84, 0.79]
    m = mean_over(values)
    low, high = stats.t.interval(0.95, df=2, loc=np.mean(values), scale=stats.sem(values))
    assert m.n == 3 and m.df == 2 and m.n_of == "seeds"
    assert m.interval == pytest.approx((low, high), rel=1e-12)


def test_one_seed_has_no_interval() -> None:
    m = mean_over([0.8])
    assert math.isnan(m.se) and all(math.isnan(x) for x in m.interval)


def test_paired_difference_of_two_classifiers() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(500) < 0.8
    b = np.where(rng.random(500) < 0.9, a, ~a)  # agrees with a on 90 % of the examples
    m = paired_difference(a, b)
    d = a.astype(float) - b.astype(float)
    n10, n01 = int(np.sum(d > 0)), int(np.sum(d < 0))
    # the discordant-pair form of the SE (McNemar's setting), derived independently of sd(d)/√n
    p10, p01 = n10 / 500, n01 / 500
    se = math.sqrt((p10 + p01 - (p10 - p01) ** 2) / 499)
    assert m.value == pytest.approx(p10 - p01) and m.se == pytest.approx(se, rel=1e-12) and m.n == 500


def test_paired_difference_needs_the_same_examples() -> None:
    with pytest.raises(ValueError, match="same examples"):
        paired_difference(np.ones(3), np.ones(4))


def test_mean_of_scores_interval_covers_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(2000):
        m = mean_of_scores(rng.random(400) < 0.7)
        covered += m.interval[0] <= 0.7 <= m.interval[1]
    # 95 % ± 3 binomial SEs of 2,000 trials
    assert abs(covered / 2000 - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 2000)


def test_proportion_gives_wilson_interval() -> None:
    m = proportion(0, 10, "cells")
    assert m.value == 0 and m.se == 0
    # Wilson's upper bound for 0 of n is z²/(n + z²)
    assert m.interval[0] == pytest.approx(0, abs=1e-15) and m.interval[1] == pytest.approx(Z95**2 / (10 + Z95**2))
    m = proportion(7, 10, "cells")
    low, high = m.interval
    p, z, n = 0.7, Z95, 10
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_min_and_max_take_the_conservative_interval() -> None:
    parts = [Measured(0.05, 0.01, 500, "test examples"), Measured(0.02, 0.02, 500, "test examples"),
             Measured(0.10, 0.01, 500, "test examples")]
    lo = [p.interval[0] for p in parts]
    hi = [p.interval[1] for p in parts]
    m = min_of(parts, "widths")
    assert m.value == 0.02 and m.interval == (min(lo), min(hi)) and "min over 3 widths" in m.n_of
    m = max_of(parts, "widths")
    assert m.value == 0.10 and m.interval == (max(lo), max(hi))


def test_difference_of_independent_estimates() -> None:
    a, b = mean_over([1.0, 1.2, 1.1]), mean_over([0.5, 0.7, 0.9])
    d = difference(a, b)
    assert d.value == pytest.approx(a.value - b.value)
    assert d.se == pytest.approx(math.hypot(a.se, b.se))
    # Welch–Satterthwaite with equal n - 1 = 2 on both sides
    df = (a.se**2 + b.se**2) ** 2 / (a.se**4 / 2 + b.se**4 / 2)
    assert d.df == int(df)


def test_exact_values_have_a_point_interval() -> None:
    assert exact(1.0).interval == (1.0, 1.0)


def test_measured_refuses_a_negative_se_or_no_n() -> None:
    with pytest.raises(ValueError):
        Measured(0.1, -1.0, 3, "seeds")
    with pytest.raises(ValueError):
        Measured(0.1, 0.1, 3, "")
