"""The statistics behind the binary-surrogate scorecard (papers/binary_surrogates/measure.py) on synthetic results:
paired per-example SEs against a hand computation, Wilson intervals over cells, the tie set of the best σ_m², the
guards that invalidate claims on untrained networks, and the tie that once passed `more_samples_help`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from common.claims import scorecard
from common.outcomes import RunResult
from common.registry import RunPlan
from common.stats import proportion
from papers.binary_surrogates.claims import CLAIMS
from papers.binary_surrogates.measure import best_column, binary_measured, measure

RNG = np.random.default_rng(0)


def correct(p: float, n: int = 400) -> np.ndarray:
    return (RNG.random(n) < p).astype(np.float32)


def binary_outcomes(surrogate: float, few: float, most: float, sign: float, depths=(5, 10, 15)) -> dict:
    out = {}
    for d in depths:
        out |= {f"surrogate_L{d}": correct(surrogate), f"stochastic5_L{d}": correct(few),
                f"stochastic100_L{d}": correct(most), f"deterministic_L{d}": correct(sign)}
    return out


def rows_of(measured: dict) -> dict[str, dict]:
    return {r["id"]: r for r in scorecard(CLAIMS, measured, "smoke")}


def test_paired_gaps_have_the_hand_computed_standard_error() -> None:
    outcomes = binary_outcomes(0.9, 0.6, 0.8, 0.7)
    measured = binary_measured(outcomes)
    for d in (5, 10, 15):
        diff = outcomes[f"surrogate_L{d}"].astype(float) - outcomes[f"stochastic100_L{d}"]
        gap = measured[f"binary_gap_stochastic100_L{d}"]
        assert gap.value == pytest.approx(diff.mean())
        assert gap.se == pytest.approx(diff.std(ddof=1) / math.sqrt(len(diff)))
        assert gap.n == 400 and "paired" in gap.n_of
    worst = max((measured[f"binary_gap_stochastic100_L{d}"] for d in (5, 10, 15)), key=lambda m: m.value)
    assert measured["binary_gap_stochastic_most_max"].value == worst.value
    assert measured["binary_gap_stochastic_most_max"].interval[0] == max(
        measured[f"binary_gap_stochastic100_L{d}"].interval[0] for d in (5, 10, 15))
    gain = np.mean([outcomes[f"stochastic100_L{d}"].astype(float) - outcomes[f"stochastic5_L{d}"]
                    for d in (5, 10, 15)], axis=0)  # averaged over depths example by example
    assert measured["binary_gain_most_over_fewest"].se == pytest.approx(gain.std(ddof=1) / math.sqrt(400))


def test_a_tie_between_5_and_100_samples_does_not_pass() -> None:
    """The old claim was `gain >= 0`: two ensembles both at chance (equal scores) passed it."""
    outcomes = binary_outcomes(0.9, 0.1, 0.1, 0.7)
    for d in (5, 10, 15):
        outcomes[f"stochastic100_L{d}"] = outcomes[f"stochastic5_L{d}"].copy()
    measured = binary_measured(outcomes)
    assert measured["binary_gain_most_over_fewest"].value == 0.0
    assert rows_of(measured)["more_samples_help"]["status"] == "not_reproduced"


def test_binary_claims_on_untrained_surrogates_are_invalid() -> None:
    measured = binary_measured(binary_outcomes(0.1, 0.1, 0.1, 0.1))  # nothing trained: every gap is ~0
    rows = rows_of(measured)
    assert rows["binary_surrogates_trained"]["status"] == "not_reproduced"
    for claim in ("stochastic_binary_close", "more_samples_help", "deterministic_binary_falls_behind"):
        assert rows[claim]["status"] == "not_run"
        assert "invalid: check binary_surrogates_trained is not reproduced" in rows[claim]["note"]


def test_a_sign_network_at_chance_at_the_shallowest_depth_invalidates_falls_behind() -> None:
    measured = binary_measured(binary_outcomes(0.9, 0.6, 0.8, 0.1))
    rows = rows_of(measured)
    assert rows["binary_surrogates_trained"]["status"] == "reproduced"
    assert rows["sign_network_works_shallow"]["status"] == "not_reproduced"
    assert rows["deterministic_binary_falls_behind"]["status"] == "not_run"


def test_trainability_fractions_are_wilson_intervals_over_cells() -> None:
    metrics = {"train_examples": 4000.0, "deterministic_cells_within_6xi": 31.0,
               "deterministic_trained_cells_within_6xi": 28.0, "deterministic_cells_beyond_6xi": 17.0,
               "deterministic_trained_cells_beyond_6xi": 8.0, "deterministic_train_acc_max": 0.88}
    columns = {0.5: np.array([0.3, 0.2, 0.1]), 0.8: np.array([0.85, 0.86, 0.84])}  # per depth
    outcomes = {f"deterministic_train_sm{s:g}": v for s, v in columns.items()}
    measured = measure({RunPlan("trainability"): RunResult(metrics, outcomes)}, "smoke", None)
    within = measured["deterministic_trained_within_6xi"]
    assert within.interval == proportion(28, 31, "cells").interval and within.n == 31 and within.n_of == "cells"
    rows = rows_of(measured)
    assert rows["trainable_within_6xi"]["status"] == "inconclusive"  # 0.90, Wilson [0.75, 0.97] against >= 0.8
    assert rows["untrainable_beyond_6xi"]["status"] == "not_reproduced"  # 8 of 17 against <= 0.2
    assert rows["best_near_one"]["status"] == "reproduced"


def test_untrained_grid_invalidates_the_trainability_claims() -> None:
    """A grid that trained nothing would pass 'untrainable beyond 6ξ_c' (0 of n cells train)."""
    metrics = {"train_examples": 4000.0, "deterministic_cells_within_6xi": 31.0,
               "deterministic_trained_cells_within_6xi": 0.0, "deterministic_cells_beyond_6xi": 17.0,
               "deterministic_trained_cells_beyond_6xi": 0.0, "deterministic_train_acc_max": 0.2}
    rows = rows_of(measure({RunPlan("trainability"): RunResult(metrics, {})}, "smoke", None))
    assert rows["deterministic_grid_trained"]["status"] == "not_reproduced"
    assert rows["untrainable_beyond_6xi"]["status"] == "not_run"


def test_best_sigma_is_the_set_of_columns_not_worse_than_the_best_paired_by_depth() -> None:
    columns = {0.9: np.array([0.85, 0.86, 0.84, 0.83]), 0.7: np.array([0.86, 0.80, 0.86, 0.81]),
               0.3: np.array([0.40, 0.30, 0.20, 0.11])}
    best = best_column(columns)
    assert best.value == 0.9 and best.interval == (0.7, 0.9)  # 0.3 is surely worse; 0.7 cannot be told apart
    assert best.n == 12 and best.n_of.startswith("cells") and math.isnan(best.se)
    gap = columns[0.9] - columns[0.3]  # by hand: excluded when mean − t_{3, 1 − 0.025/2} · sd/√4 > 0
    assert gap.mean() - stats.t.ppf(1 - 0.0125, 3) * gap.std(ddof=1) / 2 > 0
    assert best_column({0.9: np.array([0.8]), 0.3: np.array([0.2])}).interval == (0.3, 0.9)  # one depth: no test
