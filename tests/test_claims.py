"""Claims and the scorecard: statuses earned by intervals, kinds, guards, bad declarations."""

from __future__ import annotations

import math

import pytest

from common.claims import Claim, Expectation, count_statuses, format_table, headline, scorecard, unmeasured_claims
from common.stats import Measured, exact


@pytest.mark.parametrize(("op", "value", "low", "high", "status"), [
    (">=", 0.0, 0.001, 0.02, "reproduced"),
    (">=", 0.0, -0.003, 0.017, "inconclusive"),   # a margin inside the noise
    (">=", 0.0, -0.03, -0.001, "not_reproduced"),
    (">", 0.0, 0.0, 0.0, "not_reproduced"),       # an exact tie never passes a strict claim
    (">", 0.0, -0.01, 0.02, "inconclusive"),
    ("<=", 0.2, 0.1, 0.19, "reproduced"),
    ("<=", 0.2, 0.21, 0.3, "not_reproduced"),
    ("<", 0.2, 0.1, 0.2, "inconclusive"),
    ("≈", 0.8, 0.79, 0.81, "reproduced"),
    ("≈", 0.8, 0.77, 0.79, "inconclusive"),
    ("≈", 0.8, 0.70, 0.77, "not_reproduced"),
    (">=", 0.0, math.nan, math.nan, "inconclusive"),
])
def test_status_is_earned_by_the_interval(op: str, value: float, low: float, high: float, status: str) -> None:
    expectation = Expectation(op, value, 0.02 if op == "≈" else 0.0)
    assert expectation.decide(low, high) == status


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        Expectation("=>", 0.0)
    with pytest.raises(ValueError, match="only goes with ≈"):
        Expectation(">=", 0.0, tol=0.01)
    with pytest.raises(ValueError, match="needs a tolerance"):
        Expectation("≈", 0.8)
    with pytest.raises(ValueError, match="kind 'finding' is not one of paper, control, check"):
        Claim("a", "finding", "s", "Fig. 1", "m", {"smoke": Expectation(">=", 0.0)})
    with pytest.raises(ValueError, match="needs a source"):
        Claim("a", "paper", "s", " ", "m", {"smoke": Expectation(">=", 0.0)})
    with pytest.raises(ValueError, match="only a check guards"):
        Claim("a", "paper", "s", "Fig. 1", "m", {"smoke": Expectation(">=", 0.0)}, guards=("b",))
    with pytest.raises(ValueError, match="expected must map"):
        Claim("a", "paper", "s", "Fig. 1", "m", {"tiny": Expectation(">=", 0.0)})
    with pytest.raises(ValueError, match="kind 's' is not one of"):  # no kind at all: the statement lands there
        Claim("a", "s", "Fig. 1", "m", {"smoke": Expectation(">=", 0.0)})


def _claims() -> tuple[Claim, ...]:
    return (
        Claim("a", "paper", "holds", "Fig. 1", "m1", {"smoke": Expectation(">=", 0.5)}),
        Claim("b", "paper", "fails", "Fig. 2", "m2", {"smoke": Expectation("<=", 0.1)}),
        Claim("c", "control", "noisy", "ours", "m3", {"smoke": Expectation(">", 0.0)}),
        Claim("d", "paper", "paper only", "Tab. 1", "m1", {"paper": Expectation("≈", 0.8, 0.02)}),
        Claim("e", "paper", "not measured", "Tab. 1", "m4", {"smoke": Expectation(">=", 0.0)}),
        Claim("trained", "check", "the net trained", "ours", "acc", {"smoke": Expectation(">=", 0.9)},
              guards=("a",)),
    )


def test_scorecard_rows() -> None:
    measured = {"m1": Measured(0.9, 0.01, 500, "test examples"), "m2": Measured(0.3, 0.02, 3, "seeds", df=2),
                "m3": Measured(0.007, 0.01, 500, "test examples (paired)", note="one training run"),
                "acc": exact(0.95, 1, "run")}
    rows = scorecard(_claims(), measured, "smoke")
    by_id = {r["id"]: r for r in rows}
    assert [r["status"] for r in rows] == ["reproduced", "not_reproduced", "inconclusive", "not_run", "not_run",
                                           "reproduced"]
    a = by_id["a"]
    assert a["kind"] == "paper" and a["se"] == 0.01 and a["n"] == 500 and a["n_of"] == "test examples"
    assert a["interval"] == pytest.approx([0.9 - 1.96 * 0.01, 0.9 + 1.96 * 0.01], abs=1e-4)
    assert by_id["d"]["expected"] == "≈ 0.8 ± 0.02" and by_id["d"]["expected_scale"] == "paper"
    assert by_id["c"]["note"] == "one training run"
    assert count_statuses(rows) == {"reproduced": 1, "not_reproduced": 1, "inconclusive": 0, "not_run": 2}
    table = format_table(rows)
    assert "0.007 ± 0.01" in table and "[paper]" in table and "one training run" in table
    assert headline(rows).startswith("1 of 4 paper claims reproduced (1 not reproduced, 2 not run)")
    assert headline(rows).endswith("; 0 of 1 controls reproduced (1 inconclusive); 1 of 1 checks passed")


def test_a_failed_check_invalidates_what_it_guards() -> None:
    measured = {"m1": Measured(0.9, 0.01, 500, "test examples"), "acc": exact(0.3, 1, "run")}
    rows = {r["id"]: r for r in scorecard(_claims(), measured, "smoke")}
    assert rows["trained"]["status"] == "not_reproduced"
    assert rows["a"]["status"] == "not_run" and rows["a"]["note"] == "invalid: check trained is not reproduced"
    assert rows["a"]["measured"] == 0.9  # still shown


def test_a_float_metric_is_refused_with_its_claim_named() -> None:
    with pytest.raises(TypeError, match="claim a: its metric 'm1' is a float"):
        scorecard(_claims(), {"m1": 0.9}, "smoke")


def test_unmeasured_claims_names_missing_metrics() -> None:
    missing = unmeasured_claims(_claims(), {"m1": exact(0.9), "m2": 0.3}, "smoke")
    assert missing == ["b (metric 'm2': not a Measured)", "c (metric 'm3': missing)", "e (metric 'm4': missing)",
                       "trained (metric 'acc': missing)"]
