"""Find the run dirs a paper's reproduction left, from its plan alone (no training, no network).

Each `RunPlan` of `spec.plan(scale)` names one run dir (its config gives the run id); its summary.json says whether it
finished. A missing run dir is "not run"; an unreadable summary.json is named, skipped, and the rest is reported.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from common.config import SCALES, compose
from common.errors import UserError
from common.outcomes import RunResult, load_outcomes
from common.registry import PaperSpec, RunPlan
from common.rundir import run_dir_of


@dataclass(frozen=True)
class RunRecord:
    """One planned run and what its run dir holds (summary None: not run, or unreadable: see `problem`)."""

    plan: RunPlan
    run_dir: Path
    summary: dict | None
    problem: str | None = None

    @property
    def status(self) -> str:
        if self.problem:
            return "unreadable"
        return self.summary.get("status", "unknown") if self.summary else "not run"

    @property
    def finished(self) -> bool:
        return self.status == "finished"


@dataclass(frozen=True)
class Collected:
    paper: PaperSpec
    scale: str
    runs: list[RunRecord]

    @property
    def results(self) -> dict[RunPlan, RunResult]:
        """What `spec.measure` takes: the final metrics and per-example scores of every finished run."""
        return {r.plan: RunResult(r.summary.get("metrics", {}), load_outcomes(r.run_dir))
                for r in self.runs if r.finished}


def _read(run_dir: Path) -> tuple[dict | None, str | None]:
    path = run_dir / "summary.json"
    if not path.exists():
        return None, None
    try:
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict):
            raise ValueError(f"expected a JSON object, got {type(summary).__name__}")
    except (OSError, ValueError) as err:
        print(f"warning: skipping {path}: it cannot be read ({err}); the rest is reported", file=sys.stderr)
        return None, f"{path.name} unreadable: {err}"
    return summary, None


def collect_runs(spec: PaperSpec, scale: str, overrides: list[str], runs_root: str | None = None) -> Collected:
    """The run dirs of `spec.plan(scale)`, as `repro reproduce <paper> --scale <scale> [overrides]` names them."""
    extra = [*overrides, *([f"run.root={runs_root}"] if runs_root else [])]
    records = []
    for plan in spec.plan(scale):
        cfg = compose(spec.name, plan.experiment, [*plan.overrides, *extra])
        run_dir = run_dir_of(cfg.run.root, spec.name, plan.experiment, cfg.run.id)
        records.append(RunRecord(plan, run_dir, *_read(run_dir)))
    return Collected(spec, scale, records)


def collect_any_scale(spec: PaperSpec, scale: str | None, overrides: list[str],
                      runs_root: str | None = None) -> Collected:
    """`collect_runs` at `scale`, or (scale None) at the scale with the most finished runs (smoke on a tie).

    Raises a UserError that names the command producing the runs when no planned run dir exists at all.
    """
    scales = [scale] if scale else list(SCALES)
    found = [collect_runs(spec, s, overrides, runs_root) for s in scales]
    best = max(found, key=lambda c: (sum(r.finished for r in c.runs), sum(r.summary is not None for r in c.runs)))
    if not any(r.summary or r.problem for r in best.runs):
        where = runs_root or compose(spec.name, spec.plan(best.scale)[0].experiment, overrides).run.root
        raise UserError(f"No runs of {spec.name} at {best.scale if scale else 'any'} scale under {where}/. "
                        f"Produce them with `repro reproduce {spec.name} --scale {best.scale}`"
                        f"{' --runs ' + runs_root if runs_root else ''} (or point --runs at their run root).")
    return best
