"""Claims a paper makes, and the scorecard that checks them against measured results.

A claim names the paper's figure/table it comes from, the metric that measures it, and what is
expected at each scale (smoke: a CPU in minutes; paper: the published setting). A claim with no
expectation at a scale is "not_run" at that scale; a claim whose metric was not measured is too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["reproduced", "not_reproduced", "not_run"]
STATUSES: tuple[Status, ...] = ("reproduced", "not_reproduced", "not_run")


@dataclass(frozen=True)
class Expectation:
    """`measured op value`, where op is ">=", "<=" or "≈" (|measured - value| <= tol)."""

    op: Literal[">=", "<=", "≈"]
    value: float
    tol: float = 0.0

    def holds(self, measured: float) -> bool:
        if math.isnan(measured):
            return False
        if self.op == ">=":
            return measured >= self.value - self.tol
        if self.op == "<=":
            return measured <= self.value + self.tol
        return abs(measured - self.value) <= self.tol

    def __str__(self) -> str:
        if self.op == "≈":
            return f"{self.value:g} ± {self.tol:g}"
        return f"{self.op} {self.value:g}" + (f" (tol {self.tol:g})" if self.tol else "")


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    source: str  # the paper's figure / table / section
    metric: str  # key of the paper's measured results
    expected: dict[str, Expectation] = field(default_factory=dict)  # scale -> expectation


def scorecard(claims: tuple[Claim, ...], measured: dict[str, float], scale: str) -> list[dict]:
    """One row per claim: id, statement, source, metric, expected, measured, status."""
    rows = []
    for claim in claims:
        expectation = claim.expected.get(scale)
        value = measured.get(claim.metric) if expectation is not None else None
        if value is None:
            status: Status = "not_run"
        else:
            status = "reproduced" if expectation.holds(value) else "not_reproduced"
        shown = expectation or next(iter(claim.expected.values()), None)
        rows.append({
            "id": claim.id, "statement": claim.statement, "source": claim.source, "metric": claim.metric,
            "expected": str(shown) if shown else None,
            "expected_scale": scale if expectation else next(iter(claim.expected), None),
            "measured": None if value is None or math.isnan(value) else round(float(value), 4),
            "status": status,
        })
    return rows


def count_statuses(rows: list[dict]) -> dict[Status, int]:
    """How many scorecard rows have each status, in the order reproduced, not_reproduced, not_run."""
    return {s: sum(r["status"] == s for r in rows) for s in STATUSES}


def format_table(rows: list[dict]) -> str:
    """The scorecard as a fixed-width text table for the terminal."""
    head = ("claim", "source", "expected", "measured", "status")
    cells = [(r["id"], r["source"], (r["expected"] or "-") + ("" if r["expected_scale"] in (None, "smoke")
                                                            else f" [{r['expected_scale']}]"),
              "-" if r["measured"] is None else f"{r['measured']:.4g}", r["status"]) for r in rows]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*c) for c in cells]
    out.append(", ".join(f"{n} {s.replace('_', ' ')}" for s, n in count_statuses(rows).items()))
    return "\n".join(out)
