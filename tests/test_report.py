"""`repro report`: the local HTML report (checked in a real headless Chromium), the W&B report spec, bad input.

One tiny rainbow reproduction (two real runs, W&B logging offline) feeds every test; only the W&B network calls
are replaced, never the results.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import struct
from pathlib import Path

import pytest
import wandb

from common import registry
from common.cli import main
from common.registry import RunPlan, discover
from common.report import wandb_report
from tests.browser import HeadlessChromium, find_chromium
from tests.test_cli import FAST

SECRET = "sk-canary-5e2a9f"  # a W&B key in the environment must never reach a file


@dataclasses.dataclass
class Reproduced:
    root: Path
    logged: dict[str, set[str]]  # W&B run id -> the keys its summary held when it finished

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def report(self, *args: str, reports: Path | None = None) -> int:
        return main(["report", "rainbow", "--runs", str(self.runs), "--reports", str(reports or self.root / "rep"),
                     *args])


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    spec = registry.get_paper("rainbow")
    tiny = [RunPlan("mlp", (*FAST, f"model.width={w}")) for w in (16, 32)]
    logged: dict[str, set[str]] = {}
    real_finish = wandb.finish

    def finish_and_note(*args, **kwargs):  # what each W&B run really received, read before it closes
        if wandb.run is not None:
            logged[wandb.run.id] = set(wandb.run.summary.keys())
        return real_finish(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(registry.PAPERS, "rainbow", dataclasses.replace(spec, plan=lambda scale: tiny))
        mp.setenv("WANDB_API_KEY", SECRET)
        mp.setenv("WANDB_SILENT", "true")
        mp.setattr(wandb, "finish", finish_and_note)
        assert main(["reproduce", "rainbow", "--runs", str(root / "runs"), "--reports", str(root / "reports"),
                     "logger.wandb.enabled=true", "logger.wandb.mode=offline",
                     "trainer.enable_progress_bar=false"]) == 0
        mp.setattr(wandb, "finish", real_finish)
        yield Reproduced(root, logged)


def _html(folder: Path) -> str:
    return (folder / "rainbow" / "index.html").read_text()


def test_reproduce_leaves_the_report_and_report_rebuilds_it_from_run_dirs(reproduced: Reproduced) -> None:
    assert (reproduced.root / "reports" / "rainbow" / "index.html").is_file()  # reproduce ends with the report
    assert reproduced.report() == 0
    page = _html(reproduced.root / "rep")
    claims = registry.get_paper("rainbow").claims
    assert len(re.findall(r'<tr id="claim-', page)) == len(claims)
    assert "reproduced" in page and "0.814" in page  # ours beside the paper's Table 1 value
    assert page.count("data:image/png;base64,") >= 1 + 2  # the accuracy-vs-width figure and each run's figures
    assert page.count("config.yaml</summary>") == 2
    for href in re.findall(r'<a href="([^"]+)/">', page):  # run dir links resolve from the report's folder
        assert (reproduced.root / "rep" / "rainbow" / href / "summary.json").is_file()
    rows = json.loads((reproduced.root / "rep" / "rainbow" / "scorecard.json").read_text())
    assert {r["id"] for r in rows} == {c.id for c in claims}


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's)")
def test_report_renders_in_headless_chromium(reproduced: Reproduced, tmp_path: Path) -> None:
    assert reproduced.report(reports=tmp_path) == 0
    browser = HeadlessChromium(find_chromium())
    try:
        browser.open(tmp_path / "rainbow" / "index.html")
        rows = browser.evaluate("document.querySelectorAll('table.claims tr[id^=claim-]').length")
        images = browser.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        shot = browser.screenshot(tmp_path / "report.png")
        errors = browser.errors()
    finally:
        browser.close()
    assert rows == len(registry.get_paper("rainbow").claims)
    assert len(images) >= 3 and all(complete and width > 0 for _, complete, width in images), images
    assert errors == []
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # PNG header: the page really painted
    assert width >= 1000 and height > 2000 and shot.stat().st_size > 50_000


def test_partial_and_corrupt_runs_are_reported_not_fatal(reproduced: Reproduced, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(reproduced.runs, runs)
    narrow, wide = sorted((runs / "rainbow" / "mlp").iterdir(), key=lambda d: len(d.name))[:2]
    (narrow / "summary.json").write_text("{ not json")
    shutil.rmtree(wide)
    assert main(["report", "rainbow", "--runs", str(runs), "--reports", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert str(narrow / "summary.json") in err and "skipping" in err
    page = _html(tmp_path / "rep")
    assert "unreadable" in page and "not run" in page
    rows = json.loads((tmp_path / "rep" / "rainbow" / "scorecard.json").read_text())
    assert {r["status"] for r in rows} == {"not_run"}


def test_every_paper_measures_partial_results(tmp_path: Path) -> None:
    """A paper's `measure` must take any subset of its runs (here none) without failing."""
    for spec in discover().values():
        for scale in ("smoke", "paper"):
            assert spec.measure({}, scale, tmp_path / spec.name) is not None


def test_bad_input_says_what_to_do(reproduced: Reproduced, tmp_path: Path, monkeypatch, capsys) -> None:
    def error(*args: str) -> str:
        assert main(["report", *args]) == 2
        return capsys.readouterr().err

    assert "rainbow" in error("nope") and "cka_reliability" in error("nope")
    assert "repro reproduce rainbow --scale smoke" in error("rainbow", "--runs", str(tmp_path / "empty"))
    assert "ENTITY/PROJECT" in error("rainbow", "--wandb", "just-a-project")
    assert "--wandb" in error("rainbow", "--dry-run")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc from `wandb login`
    message = error("rainbow", "--runs", str(reproduced.runs), "--reports", str(tmp_path / "r"), "--wandb", "a/b")
    assert "wandb login" in message and "--dry-run" in message


def test_index_over_every_paper(reproduced: Reproduced, tmp_path: Path) -> None:
    assert main(["report", "--all", "--runs", str(reproduced.runs), "--reports", str(tmp_path)]) == 0
    index = (tmp_path / "index.html").read_text()
    for name in discover():
        assert f"<b>{name}</b>" in index
    assert 'href="rainbow/index.html"' in index and (tmp_path / "rainbow" / "index.html").is_file()
    assert "repro reproduce task_geometry --scale smoke" in index  # no runs yet: the command that makes them


def _scrub(spec: dict) -> dict:
    """Runset ids and panel ids are random on every build."""
    text = json.dumps(spec)
    text = re.sub(r'"(id|__id__|ref|name)": "[0-9a-z]{9,12}"', r'"\1": "<random>"', text)
    return json.loads(text)


def _grids(spec: dict) -> list[dict]:
    return [b["metadata"] for b in spec["blocks"] if b["type"] == "panel-grid"]


def test_wandb_dry_run_writes_the_spec_of_the_same_panels(reproduced: Reproduced, tmp_path: Path) -> None:
    assert reproduced.report("--wandb", "team/proj", "--dry-run", reports=tmp_path) == 0
    saved = json.loads((tmp_path / "rainbow" / "wandb_report.json").read_text())
    assert (saved["entity"], saved["project"]) == ("team", "proj")
    spec = saved["spec"]
    types = [b["type"] for b in spec["blocks"]]
    assert types == ["paragraph", "heading", "paragraph", "heading", "markdown-block", "heading", "panel-grid",
                     "heading", "panel-grid", "paragraph"]
    claims_md = next(b for b in spec["blocks"] if b["type"] == "markdown-block")["content"]
    assert all(f"**{c.id}**" in claims_md for c in registry.get_paper("rainbow").claims)
    runs_grid, figures_grid = _grids(spec)
    runset = runs_grid["runSets"][0]
    assert runset["project"]["entityName"] == "team" and runset["project"]["name"] == "proj"
    filters = {(f["key"]["name"], f["value"]) for f in runset["filters"]["filters"]}
    assert filters == {("group", "rainbow/mlp"), ("scale", "smoke")}
    panels = runs_grid["panelBankSectionConfig"]["panels"]
    assert panels and {p["viewType"] for p in panels} == {"Run History Line Plot"}
    plotted = {m for p in panels for m in p["config"]["metrics"]}
    assert {p["config"]["xAxis"] for p in panels} == {"trainer/global_step"}
    # honest panels: every plotted key (and the x axis) was really logged to each of the runs' W&B runs
    assert len(reproduced.logged) == 2
    for keys in reproduced.logged.values():
        assert plotted | {"trainer/global_step"} <= keys
    media = figures_grid["panelBankSectionConfig"]["panels"]
    assert [p["config"]["mediaKeys"] for p in media] == [["figures/accuracy_vs_width"]]
    assert list((tmp_path / "rainbow" / "wandb").glob("offline-run-*-rainbow-report-smoke/run-*.wandb"))


def test_wandb_report_round_trips_through_the_library_model(reproduced: Reproduced, tmp_path: Path) -> None:
    import wandb_workspaces.reports.v2 as wr

    assert reproduced.report(reports=tmp_path) == 0
    from common.report.collect import collect_runs
    from common.report.local import build_paper_report

    report = build_paper_report(collect_runs(registry.get_paper("rainbow"), "smoke", [], str(reproduced.runs)),
                                tmp_path)
    built = wandb_report.build_wandb_report(report, "team", "proj")
    with wandb_report._offline_lookup():
        again = wr.Report._from_model(built._to_model())
    assert _scrub(wandb_report.report_spec(again)) == _scrub(wandb_report.report_spec(built))


class RecordingApi:
    """The W&B transport, and only it: answers the project lookup and records what upsertView would store."""

    app_url = "https://wandb.example"
    default_entity = "team"

    def __init__(self) -> None:
        self._service_api = self
        self.views: list[dict] = []

    def projects(self, entity: str) -> list:
        return []

    def create_project(self, name: str, entity: str) -> None:
        self.created = (entity, name)

    def execute_graphql(self, query: str, variables: dict) -> dict:
        if "ProjectInternalId" in query:
            return {"project": {"id": "p1", "internalId": "p1"}}
        assert "upsertView" in query
        self.views.append(variables)
        return {"upsertView": {"view": {"id": "view1", "name": variables["name"], "displayName":
                                        variables["displayName"], "description": variables["description"],
                                        "project": {"entityName": "team", "name": "proj"},
                                        "spec": variables["spec"]}}}


def test_wandb_save_sends_the_dry_run_spec_after_syncing(reproduced: Reproduced, tmp_path: Path, monkeypatch,
                                                         capsys) -> None:
    from wandb_workspaces.reports.v2 import interface

    api, synced = RecordingApi(), []
    monkeypatch.setattr(interface, "_get_api", lambda: api)
    monkeypatch.setattr(wandb_report, "sync_offline_runs", lambda folders, e, p: synced.extend(folders))
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    assert reproduced.report("--wandb", "team/proj", "--sync", reports=tmp_path) == 0
    assert "W&B report: https://wandb.example/team/proj/reports/" in capsys.readouterr().out
    assert api.created == ("team", "proj") and len(api.views) == 1 and api.views[0]["type"] == "runs"
    offline = sorted(reproduced.runs.glob("rainbow/mlp/*/wandb/offline-run-*"))
    assert len(offline) == 2 and set(offline) <= set(synced)
    assert any("rainbow-report-smoke" in f.name for f in synced)
    assert reproduced.report("--wandb", "team/proj", "--dry-run", reports=tmp_path) == 0
    dry = json.loads((tmp_path / "rainbow" / "wandb_report.json").read_text())["spec"]
    sent = json.loads(api.views[0]["spec"])
    assert _scrub(sent) == _scrub(json.loads(json.dumps(dry).replace('"dry-run"', '"p1"')))


def test_the_api_key_never_reaches_a_file(reproduced: Reproduced) -> None:
    assert reproduced.report("--wandb", "team/proj", "--dry-run") == 0
    for path in reproduced.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path
