"""`repro report`: the local HTML report (checked in a real headless Chromium), the W&B report spec, bad input.

One reproduction of the tests' toy paper (two real runs, W&B logging offline) feeds every test; only the W&B
network calls are replaced, never the results.
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
from common.claims import format_interval, format_measured, scorecard
from common.cli import main
from common.registry import discover
from common.report import wandb_report
from common.report.markdown import BEGIN, END
from tests.browser import HeadlessChromium, find_chromium
from tests.toy_paper import toy_paper

SECRET = "sk-canary-5e2a9f"  # a W&B key in the environment must never reach a file


@dataclasses.dataclass
class Reproduced:
    root: Path
    logged: dict[str, set[str]]  # W&B run id -> the keys its summary held when it finished

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def report(self, *args: str, reports: Path | None = None) -> int:
        return main(["report", "toy", "--runs", str(self.runs), "--reports", str(reports or self.root / "rep"),
                     *args])


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("report")
    logged: dict[str, set[str]] = {}
    real_finish = wandb.finish

    def finish_and_note(*args, **kwargs):  # what each W&B run really received, read before it closes
        if wandb.run is not None:
            logged[wandb.run.id] = set(wandb.run.summary.keys())
        return real_finish(*args, **kwargs)

    with toy_paper(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_API_KEY", SECRET)
        mp.setenv("WANDB_SILENT", "true")
        mp.setattr(wandb, "finish", finish_and_note)
        assert main(["reproduce", "toy", "--runs", str(root / "runs"), "--reports", str(root / "reports"),
                     "logger.wandb.enabled=true", "logger.wandb.mode=offline",
                     "trainer.enable_progress_bar=false"]) == 0
        mp.setattr(wandb, "finish", real_finish)
        yield Reproduced(root, logged)


def _html(folder: Path) -> str:
    return (folder / "toy" / "index.html").read_text()


def test_reproduce_leaves_the_report_and_report_rebuilds_it_from_run_dirs(reproduced: Reproduced) -> None:
    assert (reproduced.root / "reports" / "toy" / "index.html").is_file()  # reproduce ends with the report
    assert reproduced.report() == 0
    page = _html(reproduced.root / "rep")
    claims = registry.get_paper("toy").claims
    assert len(re.findall(r'<tr id="claim-', page)) == len(claims)
    assert "≈ 0.9 ± 0.05" in page  # ours beside the paper's own number
    assert "<h3>Checks</h3>" in page and "95 % interval" in page and "1 of 1 paper claims" in page
    # the two forest plots (claims, checks), the accuracy figure and each run's figure
    assert page.count("data:image/png;base64,") == 2 + 1 + 2
    assert page.count("config.yaml</summary>") == 2
    for href in re.findall(r'<a href="([^"]+)/">', page):  # run dir links resolve from the report's folder
        assert (reproduced.root / "rep" / "toy" / href / "summary.json").is_file()
    rows = json.loads((reproduced.root / "rep" / "toy" / "scorecard.json").read_text())
    assert [r["id"] for r in rows] == [c.id for c in claims]


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's)")
def test_report_renders_in_headless_chromium(reproduced: Reproduced, tmp_path: Path) -> None:
    assert reproduced.report(reports=tmp_path) == 0
    browser = HeadlessChromium(find_chromium())
    try:
        browser.open(tmp_path / "toy" / "index.html")
        rows = browser.evaluate("document.querySelectorAll('table.claims tr[id^=claim-]').length")
        images = browser.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        shot = browser.screenshot(tmp_path / "report.png")
        errors = browser.errors()
    finally:
        browser.close()
    assert rows == len(registry.get_paper("toy").claims)
    assert len(images) == 5 and all(complete and width > 0 for _, complete, width in images), images
    assert errors == []
    width, height = struct.unpack(">II", shot.read_bytes()[16:24])  # PNG header: the page really painted
    assert width >= 1000 and height > 2000 and shot.stat().st_size > 50_000


def test_partial_and_corrupt_runs_are_reported_not_fatal(reproduced: Reproduced, tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(reproduced.runs, runs)
    narrow, wide = sorted((runs / "toy" / "mlp").iterdir())
    (narrow / "summary.json").write_text("{ not json")
    shutil.rmtree(wide)
    assert main(["report", "toy", "--runs", str(runs), "--reports", str(tmp_path / "rep")]) == 0
    err = capsys.readouterr().err
    assert str(narrow / "summary.json") in err and "skipping" in err
    page = _html(tmp_path / "rep")
    assert "unreadable" in page and "not run" in page
    rows = json.loads((tmp_path / "rep" / "toy" / "scorecard.json").read_text())
    assert {r["status"] for r in rows} == {"not_run"}


@pytest.mark.parametrize("paper", sorted(discover()))
def test_every_paper_measures_no_runs(paper: str, tmp_path: Path) -> None:
    """A paper's `measure` takes any subset of its runs, none included: its claims are then not run."""
    spec = discover()[paper]
    for scale in ("smoke", "paper"):
        rows = scorecard(spec.claims, spec.measure({}, scale, tmp_path / spec.name), scale)
        assert {r["status"] for r in rows} == {"not_run"}


def test_bad_input_says_what_to_do(reproduced: Reproduced, tmp_path: Path, monkeypatch, capsys) -> None:
    def error(*args: str) -> str:
        assert main(["report", *args]) == 2
        return capsys.readouterr().err

    assert "toy" in error("nope") and "rainbow" in error("nope")
    assert "repro reproduce toy --scale smoke" in error("toy", "--runs", str(tmp_path / "empty"))
    assert "ENTITY/PROJECT" in error("toy", "--wandb", "just-a-project")
    assert "--wandb" in error("toy", "--dry-run")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc from `wandb login`
    message = error("toy", "--runs", str(reproduced.runs), "--reports", str(tmp_path / "r"), "--wandb", "a/b")
    assert "wandb login" in message and "--dry-run" in message


def test_index_over_every_paper(reproduced: Reproduced, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Suite\n\n<!-- repro:index:begin -->\nold\n<!-- repro:index:end -->\n")
    assert main(["report", "--all", "--runs", str(reproduced.runs), "--reports", str(tmp_path),
                 "--markdown", str(readme)]) == 0
    summary = readme.read_text()
    assert summary.startswith("# Suite\n\n<!-- repro:index:begin") and "old" not in summary
    assert "| [`toy`](papers/toy/README.md) | 1 of 1 paper claims reproduced" in summary
    assert "| `task_geometry` | no runs yet |" in summary
    index = (tmp_path / "index.html").read_text()
    for name in discover():
        assert f"<b>{name}</b>" in index
    assert 'href="toy/index.html"' in index and (tmp_path / "toy" / "index.html").is_file()
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
    saved = json.loads((tmp_path / "toy" / "wandb_report.json").read_text())
    assert (saved["entity"], saved["project"]) == ("team", "proj")
    spec = saved["spec"]
    types = [b["type"] for b in spec["blocks"]]
    assert types == ["paragraph", "heading", "paragraph", "heading", "paragraph", "markdown-block", "heading",
                     "panel-grid", "heading", "panel-grid", "paragraph"]
    claims_md = next(b for b in spec["blocks"] if b["type"] == "markdown-block")["content"]
    assert all(f"**{c.id}**" in claims_md for c in registry.get_paper("toy").claims)
    assert "#### Checks" in claims_md and "measured ± SE" in claims_md
    runs_grid, figures_grid = _grids(spec)
    runset = runs_grid["runSets"][0]
    assert runset["project"]["entityName"] == "team" and runset["project"]["name"] == "proj"
    filters = {(f["key"]["name"], f["value"]) for f in runset["filters"]["filters"]}
    assert filters == {("group", "toy/mlp"), ("scale", "smoke")}
    panels = runs_grid["panelBankSectionConfig"]["panels"]
    assert panels and {p["viewType"] for p in panels} == {"Run History Line Plot"}
    plotted = {m for p in panels for m in p["config"]["metrics"]}
    assert {p["config"]["xAxis"] for p in panels} == {"trainer/global_step"}
    # honest panels: every plotted key (and the x axis) was really logged to each of the runs' W&B runs
    assert len(reproduced.logged) == 2
    for keys in reproduced.logged.values():
        assert plotted | {"trainer/global_step"} <= keys
    media = figures_grid["panelBankSectionConfig"]["panels"]
    assert [p["config"]["mediaKeys"] for p in media] == [["figures/accuracy"]]
    assert list((tmp_path / "toy" / "wandb").glob("offline-run-*-toy-report-smoke/run-*.wandb"))


def test_wandb_report_round_trips_through_the_library_model(reproduced: Reproduced, tmp_path: Path) -> None:
    import wandb_workspaces.reports.v2 as wr

    assert reproduced.report(reports=tmp_path) == 0
    from common.report.collect import collect_runs
    from common.report.local import build_paper_report

    report = build_paper_report(collect_runs(registry.get_paper("toy"), "smoke", [], str(reproduced.runs)),
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
    offline = sorted(reproduced.runs.glob("toy/mlp/*/wandb/offline-run-*"))
    assert len(offline) == 2 and set(offline) <= set(synced)
    assert any("toy-report-smoke" in f.name for f in synced)
    assert reproduced.report("--wandb", "team/proj", "--dry-run", reports=tmp_path) == 0
    dry = json.loads((tmp_path / "toy" / "wandb_report.json").read_text())["spec"]
    sent = json.loads(api.views[0]["spec"])
    assert _scrub(sent) == _scrub(json.loads(json.dumps(dry).replace('"dry-run"', '"p1"')))


def test_the_api_key_never_reaches_a_file(reproduced: Reproduced) -> None:
    assert reproduced.report("--wandb", "team/proj", "--dry-run") == 0
    for path in reproduced.root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path


def test_markdown_results_page_is_written_between_its_markers(reproduced: Reproduced, tmp_path: Path) -> None:
    page = tmp_path / "RESULTS.md"
    page.write_text(f"# Toy results\n\nProse before.\n\n{BEGIN}\nstale\n{END}\n\nProse after.\n")
    assert reproduced.report("--markdown", str(page), reports=tmp_path) == 0
    text = page.read_text()
    assert text.startswith("# Toy results\n\nProse before.\n\n" + BEGIN) and text.endswith(END + "\n\nProse after.\n")
    assert "stale" not in text
    assert f"Generated by `repro report toy --scale smoke --runs {reproduced.runs} --markdown {page}`" in text
    assert "2 of 2 planned at smoke scale finished" in text and "git " in text and "cores" in text
    rows = json.loads((tmp_path / "toy" / "scorecard.json").read_text())
    for row in rows:  # every scorecard number is on the page, as the terminal prints it
        assert f"**{row['id']}**" in text and format_measured(row) in text and format_interval(row) in text
    assert "#### Paper claims" in text and "#### Controls (ours)" in text and "#### Checks" in text
    assert "`max_test_acc`" in text  # a quantity measure computed that no claim uses
    assert "#### Runs of `mlp`" in text and "| model.width=16 | finished |" in text and "toy/permuted_acc" in text
    assert "The last `repro reproduce" not in text  # no reproduction left its record in tmp_path
    fresh = tmp_path / "fresh.md"  # the reports folder of the reproduction: its duration is quoted
    assert reproduced.report("--markdown", str(fresh), reports=reproduced.root / "reports") == 0
    text = fresh.read_text()
    assert text.startswith(BEGIN) and text.rstrip().endswith(END)
    assert re.search(r"The last `repro reproduce toy --scale smoke .*` took \d+\.\d min on .* \(2 runs, 0 of them "
                     r"reused from earlier", text)
