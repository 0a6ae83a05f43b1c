"""Claims a paper makes, and the scorecard that checks them against measured results.

Every claim has a kind:
- `paper`: a finding the paper states (source: its section, figure or table, with its number where it gives one);
- `control`: a control we added, labelled ours;
- `check`: an identity, a precondition, an estimator against its closed form: "the setup did what it should".
  A check may guard other claims: when it is not reproduced, they are not scored (`not_run`, marked invalid).
Headlines count `paper` claims only.

A claim's expectation at a scale is fixed before measuring: `measured op threshold`, op one of >=, >, <=, <, or
≈ (within ± tol of the paper's number). Its metric is a `common.stats.Measured` (value, SE, n, 95 % interval), and
its status is earned by the interval:
- `reproduced`: the whole interval is on the claim's side of the threshold (inside the ≈ band);
- `not_reproduced`: the whole interval is on the other side (outside the band);
- `inconclusive`: the interval straddles the threshold (or its SE is unknown);
- `not_run`: no expectation at this scale, the metric was not measured, or a guarding check failed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from common.stats import Measured

Kind = Literal["paper", "control", "check"]
KINDS: tuple[Kind, ...] = ("paper", "control", "check")
Status = Literal["reproduced", "not_reproduced", "inconclusive", "not_run"]
STATUSES: tuple[Status, ...] = ("reproduced", "not_reproduced", "inconclusive", "not_run")
OPS = (">=", ">", "<=", "<", "≈")
CLAIM_SCALES = ("smoke", "paper")


@dataclass(frozen=True)
class Expectation:
    """`measured op value`; for "≈", |measured − value| <= tol (tol: the paper's own spread)."""

    op: Literal[">=", ">", "<=", "<", "≈"]
    value: float
    tol: float = 0.0

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"Expectation op {self.op!r} is not one of {', '.join(OPS)}")
        if self.op == "≈" and not self.tol > 0:
            raise ValueError(f"Expectation ≈ {self.value} needs a tolerance tol > 0 (the paper's spread)")
        if self.op != "≈" and self.tol:
            raise ValueError(f"Expectation {self.op} {self.value}: a tolerance only goes with ≈; put the effect size "
                             "the claim needs into the threshold itself")

    def decide(self, low: float, high: float) -> Status:
        """The status a 95 % interval [low, high] earns against this expectation."""
        if math.isnan(low) or math.isnan(high):
            return "inconclusive"
        v = self.value
        if self.op == "≈":
            inside, outside = v - self.tol <= low and high <= v + self.tol, high < v - self.tol or low > v + self.tol
        elif self.op == ">=":
            inside, outside = low >= v, high < v
        elif self.op == ">":
            inside, outside = low > v, high <= v
        elif self.op == "<=":
            inside, outside = high <= v, low > v
        else:
            inside, outside = high < v, low >= v
        return "reproduced" if inside else "not_reproduced" if outside else "inconclusive"

    def __str__(self) -> str:
        return f"≈ {self.value:g} ± {self.tol:g}" if self.op == "≈" else f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Claim:
    """One row of a paper's scorecard. `expected` maps a scale (smoke, paper) to its expectation; `guards` (checks
    only) names the claims that are scored only when this check is reproduced."""

    id: str
    kind: Kind
    statement: str
    source: str
    metric: str
    expected: dict[str, Expectation] = field(default_factory=dict)
    guards: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"claim {self.id!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if not (isinstance(self.source, str) and self.source.strip()):
            raise ValueError(f"{where}: every claim needs a source (the paper's section, figure or table, or 'ours')")
        if not self.metric or not self.statement:
            raise ValueError(f"{where}: a claim needs a statement and the metric that measures it")
        if not self.expected or not set(self.expected) <= set(CLAIM_SCALES):
            raise ValueError(f"{where}: expected must map some of {', '.join(CLAIM_SCALES)} to an Expectation, "
                             f"got {sorted(self.expected)}")
        if any(not isinstance(e, Expectation) for e in self.expected.values()):
            raise ValueError(f"{where}: every expectation must be an Expectation")
        if self.guards and self.kind != "check":
            raise ValueError(f"{where}: only a check guards other claims")


def validate_claims(paper: str, claims: tuple[Claim, ...]) -> None:
    """Claim ids unique, every guard names a claim of the same paper."""
    ids = [c.id for c in claims]
    duplicate = sorted({i for i in ids if ids.count(i) > 1})
    if duplicate:
        raise ValueError(f"{paper}: duplicate claim ids {duplicate}")
    unknown = sorted({g for c in claims for g in c.guards} - set(ids))
    if unknown:
        raise ValueError(f"{paper}: checks guard unknown claims {unknown}; valid ids: {', '.join(ids)}")


def unmeasured_claims(claims: tuple[Claim, ...], measured: Mapping[str, object], scale: str) -> list[str]:
    """The claims expected at `scale` whose metric `measured` lacks or holds as something other than a Measured:
    what a paper's `measure` must produce on complete results (a mistyped metric name shows up here)."""
    return [f"{c.id} (metric {c.metric!r}: {'missing' if c.metric not in measured else 'not a Measured'})"
            for c in claims if scale in c.expected and not isinstance(measured.get(c.metric), Measured)]


def _row(claim: Claim, measured: Measured | None, scale: str) -> dict:
    expectation = claim.expected.get(scale)
    shown = expectation or next(iter(claim.expected.values()))
    row = {"id": claim.id, "kind": claim.kind, "statement": claim.statement, "source": claim.source,
           "metric": claim.metric, "expected": str(shown),
           "expected_scale": scale if expectation else next(iter(claim.expected)),
           "measured": None, "se": None, "n": None, "n_of": None, "interval": None, "note": "", "status": "not_run"}
    if expectation is None or measured is None:
        return row
    low, high = measured.interval
    finite = math.isfinite(measured.value)
    row |= {"measured": _rounded(measured.value) if finite else None, "se": _rounded(measured.se),
            "n": measured.n, "n_of": measured.n_of, "interval": [_rounded(low), _rounded(high)],
            "note": measured.note,
            "status": expectation.decide(low, high) if finite else "inconclusive"}
    return row


def _rounded(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.4g}")


def scorecard(claims: tuple[Claim, ...], measured: Mapping[str, Measured], scale: str) -> list[dict]:
    """One row per claim, in the declared order: id, kind, statement, source, metric, expected, measured, se, n,
    n_of, interval, note, status. A claim guarded by a check that is not reproduced is `not_run`, its note says
    which check invalidated it (its measured value is still shown)."""
    for c in claims:
        value = measured.get(c.metric)
        if value is not None and not isinstance(value, Measured):
            raise TypeError(f"claim {c.id}: its metric {c.metric!r} is a {type(value).__name__}; a paper's measure "
                            "must return every claim metric as a common.stats.Measured (value, se, n)")
    rows = {c.id: _row(c, measured.get(c.metric), scale) for c in claims}
    for check in claims:
        row = rows[check.id]
        if check.kind != "check" or scale not in check.expected or row["status"] == "reproduced":
            continue
        for guarded in check.guards:
            if rows[guarded]["expected_scale"] == scale:
                why = f"invalid: check {check.id} is {row['status'].replace('_', ' ')}"
                rows[guarded] |= {"status": "not_run", "note": "; ".join(x for x in (why, rows[guarded]["note"]) if x)}
    return [rows[c.id] for c in claims]


def count_statuses(rows: list[dict], kind: Kind | None = "paper") -> dict[Status, int]:
    """How many rows of `kind` (None: every row) have each status."""
    rows = [r for r in rows if kind is None or r["kind"] == kind]
    return {s: sum(r["status"] == s for r in rows) for s in STATUSES}


def headline(rows: list[dict]) -> str:
    """'k of n paper claims reproduced (...)', then the controls and the checks apart."""
    names = {"paper": ("paper claims", "reproduced"), "control": ("controls", "reproduced"),
             "check": ("checks", "passed")}
    parts = []
    for kind in KINDS:
        counts = count_statuses(rows, kind)
        total = sum(counts.values())
        if total or kind == "paper":
            rest = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n and s != "reproduced")
            noun, verb = names[kind]
            parts.append(f"{counts['reproduced']} of {total} {noun} {verb}" + (f" ({rest})" if rest else ""))
    return "; ".join(parts)


def format_measured(row: dict) -> str:
    """'0.007 ± 0.010' (the SE), or '-' when not measured."""
    if row["measured"] is None:
        return "-"
    return f"{row['measured']:.4g} ± {row['se']:.2g}" if row["se"] is not None else f"{row['measured']:.4g}"


def format_interval(row: dict) -> str:
    if not row["interval"] or row["interval"][0] is None:
        return "-" if row["measured"] is None else "unknown"
    low, high = row["interval"]
    return f"[{low:.4g}, {high:.4g}]"


def format_table(rows: list[dict]) -> str:
    """The scorecard as a fixed-width text table for the terminal: paper claims, then controls, then checks."""
    head = ("kind", "claim", "expected", "measured ± SE", "95 % interval", "n", "status")
    ordered = sorted(rows, key=lambda r: KINDS.index(r["kind"]))
    cells = [(r["kind"], r["id"], r["expected"] + ("" if r["expected_scale"] in (None, "smoke")
                                                     else f" [{r['expected_scale']}]"),
              format_measured(r), format_interval(r), "-" if r["n"] is None else f"{r['n']} {r['n_of'].split(';')[0]}",
              r["status"].replace("_", " ") + (" (invalid)" if r["note"].startswith("invalid") else ""))
             for r in ordered]
    widths = [max(len(str(c[i])) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*("-" * w for w in widths))]
    out += [line.format(*c).rstrip() for c in cells]
    notes = [f"  {r['id']}: {r['note']}" for r in ordered if r["note"]]
    if notes:
        out += ["notes:", *notes]
    out.append(headline(rows))
    return "\n".join(out)
