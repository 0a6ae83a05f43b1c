"""Claims and the scorecard."""

from __future__ import annotations

import math

from common.claims import Claim, Expectation, format_table, scorecard


def test_expectations() -> None:
    assert Expectation(">=", 0.5).holds(0.5) and not Expectation(">=", 0.5).holds(0.49)
    assert Expectation("<=", 0.2, tol=0.01).holds(0.21) and not Expectation("<=", 0.2).holds(0.21)
    assert Expectation("≈", 0.8, 0.02).holds(0.79) and not Expectation("≈", 0.8, 0.02).holds(0.77)
    assert not Expectation(">=", 0.0).holds(math.nan)
    assert str(Expectation("≈", 0.814, 0.02)) == "0.814 ± 0.02"


def test_scorecard_statuses() -> None:
    claims = (
        Claim("a", "holds", "Fig. 1", "m1", {"smoke": Expectation(">=", 0.5)}),
        Claim("b", "fails", "Fig. 2", "m2", {"smoke": Expectation("<=", 0.1)}),
        Claim("c", "not measured", "Tab. 1", "m3", {"smoke": Expectation(">=", 0.0)}),
        Claim("d", "paper only", "Tab. 1", "m1", {"paper": Expectation("≈", 0.8, 0.02)}),
    )
    rows = scorecard(claims, {"m1": 0.9, "m2": 0.3}, "smoke")
    assert [r["status"] for r in rows] == ["reproduced", "not_reproduced", "not_run", "not_run"]
    assert rows[3]["expected"] == "0.8 ± 0.02" and rows[3]["expected_scale"] == "paper" and rows[3]["measured"] is None
    table = format_table(rows)
    assert "1 reproduced, 1 not reproduced, 2 not run" in table and "[paper]" in table
