"""Every run of a paper's plan at test size (`tiny=true`), in-process: what the generated plan tests feed to the
paper's `measure`.

Plans that differ only in their seed name the same metrics, and plans whose test-size configs are equal are the
same run: each distinct config runs once, and its result stands for every plan that composes to it. Each of the
paper's experiments also runs once at test size, so that an experiment no plan names still runs its analysis.
"""

from __future__ import annotations

from pathlib import Path

from common.config import compose, config_dir, identity
from common.outcomes import RunResult, load_outcomes
from common.registry import PaperSpec, RunPlan
from common.rundir import run_dir_of
from common.train import run_experiment


def tiny_overrides(plan: RunPlan, scale: str, data_root: Path, run_root: Path) -> list[str]:
    kept = [o for o in plan.overrides if not o.startswith("seed=")]
    extra = [f"data.root={data_root}"] if scale == "paper" else []
    return [*kept, "tiny=true", *extra, f"run.root={run_root}", "trainer.enable_progress_bar=false"]


def tiny_results(spec: PaperSpec, scale: str, data_root: Path, run_root: Path) -> dict[RunPlan, RunResult]:
    """{plan: its test-size result} for every plan of `spec` at `scale`; raises if any run does not finish."""
    scale_args = ("scale=paper",) if scale == "paper" else ()
    plans = spec.plan(scale)
    every_experiment = [RunPlan(e, scale_args) for e in spec.experiments
                        if scale == "smoke" or (config_dir(spec.name) / f"{e}.{scale}.yaml").exists()]
    by_identity: dict[tuple, RunResult] = {}
    results: dict[RunPlan, RunResult] = {}
    for plan in [*plans, *every_experiment]:
        cfg = compose(spec.name, plan.experiment, tiny_overrides(plan, scale, data_root, run_root))
        key = (plan.experiment, tuple(sorted((k, str(v)) for k, v in identity(cfg).items())))
        if key not in by_identity:
            summary = run_experiment(spec, plan.experiment, cfg)
            assert summary["status"] == "finished", (plan, summary.get("error"))
            run_dir = run_dir_of(cfg.run.root, spec.name, plan.experiment, cfg.run.id)
            by_identity[key] = RunResult(summary["metrics"], load_outcomes(run_dir))
        if plan in plans:
            results[plan] = by_identity[key]
    return results

