"""The W&B report of a paper: the same panels as the local report, built with `wandb_workspaces.reports.v2`.

Blocks: title and summary; the claims table (markdown, ours beside the paper's); per experiment a panel grid whose
runset holds that experiment's runs at the report's scale (filter: W&B group and `scale` config) with a line plot per
metric the runs logged over time (x = `trainer/global_step`, the step WandbLogger gives every key); the paper's
figures in a media browser. W&B reports render from synced runs only, so the figures travel in a run of their own
(`<paper>/report` group, job type "report", logged offline under reports/<paper>/wandb/ and synced on save).

Network is touched only by `sync_offline_runs` (wandb sync) and `Report.save`. A dry run writes the spec the save
would send to reports/<paper>/wandb_report.json (project ids, looked up on save, read "dry-run").
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from common.claims import headline
from common.errors import UserError
from common.report.collect import RunRecord
from common.report.local import PaperReport
from common.report.markdown import claims_markdown
from common.wandb_mode import has_api_key

STEP = "trainer/global_step"
CSV_BOOKKEEPING = ("epoch", "step")
MAX_LINE_PLOTS = 12  # per experiment: the first metrics in `_plot_order`


def parse_wandb_target(text: str) -> tuple[str, str]:
    """"ENTITY/PROJECT" -> (entity, project)."""
    parts = text.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in text):
        raise UserError(f"--wandb takes ENTITY/PROJECT (e.g. my-team/repro), got '{text}'.")
    return parts[0], parts[1]


def wandb_group(record: RunRecord) -> str:
    """The W&B group a run logged to (`logger.wandb.group`, by default `<paper>/<experiment>`)."""
    config = record.run_dir / "config.yaml"
    group = OmegaConf.load(config).logger.wandb.group if config.exists() else None
    return group or f"{record.run_dir.parent.parent.name}/{record.plan.experiment}"


def logged_series(run_dir: Path) -> list[str]:
    """Metrics a run logged at more than one step (metrics.csv, which every Lightning logger was fed alike)."""
    try:
        with (run_dir / "metrics.csv").open(newline="") as handle:
            counts: dict[str, int] = {}
            for row in csv.DictReader(handle):
                for key, value in row.items():
                    if value not in ("", None) and key not in CSV_BOOKKEEPING:
                        counts[key] = counts.get(key, 0) + 1
    except OSError:
        return []
    return [k for k, n in counts.items() if n > 1]


def _plot_order(metric: str) -> tuple[int, str]:
    rank = next((i for i, part in enumerate(("loss", "acc")) if part in metric), 2)
    return rank, metric


def figure_key(figure: Path) -> str:
    return f"figures/{figure.stem}"


def build_wandb_report(report: PaperReport, entity: str, project: str) -> Any:
    """The `wandb_workspaces` Report object of a paper's local report (pure: no network)."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    collected, spec = report.collected, report.collected.paper
    scale = collected.scale
    done = sum(r.finished for r in collected.runs)
    blocks: list[Any] = [
        wr.H1(f"{spec.title}"),
        wr.P(f"Reproduction of {spec.name} at {scale} scale: {done} of {len(collected.runs)} planned runs finished. "
             f"Rebuild with `repro report {spec.name} --scale {scale} --wandb {entity}/{project}`."),
        wr.H2("Claims"),
        wr.P(headline(report.rows)),
        wr.MarkdownBlock(claims_markdown(report.rows, {c.id: str(c.expected["paper"]) if "paper" in c.expected
                                                       else None for c in spec.claims})),
    ]
    experiments: dict[str, list[RunRecord]] = {}
    for record in collected.runs:
        experiments.setdefault(record.plan.experiment, []).append(record)
    for experiment, records in experiments.items():
        groups = sorted({wandb_group(r) for r in records})
        metrics = sorted({m for r in records if r.summary for m in logged_series(r.run_dir)}, key=_plot_order)
        group_filter = (expr.Metric("Group") == groups[0] if len(groups) == 1
                        else expr.Or([expr.Metric("Group") == g for g in groups]))
        runset = wr.Runset(entity=entity, project=project, name=f"{experiment} ({scale})",
                           filters=[group_filter, expr.Config("scale") == scale])
        panels = [wr.LinePlot(title=m, x=STEP, y=[m]) for m in metrics[:MAX_LINE_PLOTS]]
        blocks += [wr.H2(f"{experiment}"), wr.PanelGrid(runsets=[runset], panels=panels)]
    if report.figures:
        runset = wr.Runset(entity=entity, project=project, name="figures",
                           filters=[expr.Metric("Group") == f"{spec.name}/report", expr.Config("scale") == scale])
        blocks += [wr.H2("Figures"), wr.PanelGrid(runsets=[runset], panels=[
            wr.MediaBrowser(title=figure_key(f), media_keys=[figure_key(f)], num_columns=1) for f in report.figures])]
    return wr.Report(project=project, entity=entity, title=f"{spec.name}: reproduction ({scale} scale)"[:128],
                     description=spec.title, blocks=blocks)


class _DryRunApi:
    """Stands in for `wandb.Api` in a dry run: answers the one lookup `Report._to_model` makes, a project's id."""

    app_url = "https://wandb.ai"

    def __init__(self) -> None:
        self._service_api = self  # wandb_workspaces finds the transport in the instance's __dict__

    def execute_graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        if "ProjectInternalId" not in query:
            raise RuntimeError("a dry run makes no W&B request besides the project lookup")
        return {"project": {"id": "dry-run", "internalId": "dry-run"}}


@contextlib.contextmanager
def _offline_lookup() -> Iterator[None]:
    from wandb_workspaces.reports.v2 import interface

    real = interface._get_api
    interface._get_api = _DryRunApi
    try:
        yield
    finally:
        interface._get_api = real


def report_spec(wandb_report: Any) -> dict[str, Any]:
    """The spec `Report.save` sends (upsertView's `spec`), built without network."""
    with _offline_lookup():
        model = wandb_report._to_model()
    return json.loads(model.spec.model_dump_json(by_alias=True, exclude_none=True))


def log_figures_run(report: PaperReport, entity: str, project: str) -> Path | None:
    """Log the paper's figures and claims as an offline W&B run under reports/<paper>/wandb/; its folder."""
    if not report.figures:
        return None
    import wandb

    spec, scale = report.collected.paper, report.collected.scale
    run = wandb.init(project=project, entity=entity, group=f"{spec.name}/report", job_type="report",
                     id=f"{spec.name}-report-{scale}", name=f"{spec.name}/report/{scale}", mode="offline",
                     dir=str(report.folder), config={"paper": spec.name, "scale": scale}, reinit="finish_previous")
    try:
        run.log({figure_key(f): wandb.Image(str(f)) for f in report.figures})
        columns = ["id", "kind", "source", "expected", "measured", "se", "n", "n_of", "interval", "status", "note"]
        run.log({"claims": wandb.Table(columns=columns, data=[[str(r[c]) if c == "interval" else r[c]
                                                               for c in columns] for r in report.rows])})
        folder = Path(run.dir).parent
    finally:
        run.finish()
    return folder


def offline_run_dirs(report: PaperReport) -> list[Path]:
    """The offline W&B logs the paper's finished runs left (`<run dir>/wandb/offline-run-*`), oldest first."""
    return [d for r in report.collected.runs if r.summary for d in sorted(r.run_dir.glob("wandb/offline-run-*"))]


def sync_offline_runs(folders: list[Path], entity: str, project: str) -> None:
    """Upload offline W&B runs (`wandb sync`; needs the network and an API key)."""
    if not folders:
        return
    done = subprocess.run([sys.executable, "-m", "wandb", "sync", "-e", entity, "-p", project,
                           *map(str, folders)], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"`wandb sync` failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")


def publish_wandb_report(report: PaperReport, entity: str, project: str, *, dry_run: bool, sync: bool) -> None:
    """Dry run: write the spec. Else (needs an API key): sync the runs (--sync) and the figures run, then save."""
    if not dry_run and not has_api_key():
        raise UserError("No W&B API key: run `wandb login` (or set WANDB_API_KEY) to save the report online, or "
                        "add --dry-run to write its spec to reports/<paper>/wandb_report.json without network.")
    runs = [r for r in report.collected.runs if r.summary and r.summary.get("wandb_id")]
    if not runs:
        print(f"warning: no run of this report logged to W&B (logger.wandb.enabled=true): its panels will be empty "
              f"until runs in {entity}/{project} match their filters", file=sys.stderr)
    wandb_report = build_wandb_report(report, entity, project)
    figures_run = log_figures_run(report, entity, project)
    if dry_run:
        path = report.folder / "wandb_report.json"
        path.write_text(json.dumps({"title": wandb_report.title, "entity": entity, "project": project,
                                    "spec": report_spec(wandb_report)}, indent=2) + "\n")
        print(f"W&B report spec (dry run, nothing sent): {path}")
        return
    sync_offline_runs([*(offline_run_dirs(report) if sync else []), *([figures_run] if figures_run else [])],
                      entity, project)
    try:
        wandb_report.save()
    except Exception as err:  # network or permission errors surface from the W&B client as many types
        raise UserError(f"Saving the W&B report to {entity}/{project} failed: {err}. Check the entity/project and "
                        "your key, or use --dry-run to inspect the spec.") from err
    print(f"W&B report: {wandb_report.url}")
