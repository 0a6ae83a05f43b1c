"""The `repro` subcommands through their public entry point."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from common import registry
from common.cli import expand_grid, main
from common.registry import RunPlan, discover

FAST = ["data.name=digits", "data.val_size=200", "data.test_size=300", "model.depth=2", "trainer.max_epochs=2",
        "rainbow.samples=1", "rainbow.retrain_epochs=1"]


def test_list_json_shape(capsys) -> None:
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "rainbow" in listing
    entry = listing["rainbow"]
    assert {"mlp", "cnn", "scattering"} <= set(entry["experiments"])
    assert all(set(c) == {"id", "statement", "source"} for c in entry["claims"])


def test_list_text(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "rainbow:" in out and "alignment_necessary" in out


@pytest.mark.parametrize(("target", "message"), [
    ("nopaper/mlp", f"Unknown paper 'nopaper'. Valid papers: {', '.join(sorted(discover()))}"),
    ("rainbow/nope", "Unknown experiment 'nope' of paper 'rainbow'. Valid experiments: cnn, mlp, scattering"),
    ("rainbow", "not of the form <paper>/<experiment>"),
])
def test_unknown_targets_list_the_valid_ones(target: str, message: str, capsys) -> None:
    assert main(["run", target]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_paper_for_reproduce(capsys) -> None:
    assert main(["reproduce", "nopaper"]) == 2
    assert f"Valid papers: {', '.join(sorted(discover()))}" in capsys.readouterr().err


def test_show_prints_the_composed_config(capsys) -> None:
    assert main(["run", "rainbow/cnn", "model.width=7", "--show"]) == 0
    out = capsys.readouterr().out
    assert "width: 7" in out and "name: cnn" in out


def test_expand_grid() -> None:
    assert expand_grid(["a=1,2", "b=x", "c=[1,2]"]) == [["a=1", "b=x", "c=[1,2]"], ["a=2", "b=x", "c=[1,2]"]]


def test_sweep_runs_the_grid_one_dir_each(repro, run_root: Path) -> None:
    assert repro("sweep", "rainbow/mlp", *FAST, "model.width=16,32") == 0
    configs = [OmegaConf.load(p.parent / "config.yaml") for p in run_root.glob("rainbow/mlp/*/summary.json")]
    assert sorted(c.model.width for c in configs) == [16, 32]


def test_sweep_validates_every_point_first(repro, run_root: Path, capsys) -> None:
    assert repro("sweep", "rainbow/mlp", "model.width=16,abc") == 2
    assert "expected int" in capsys.readouterr().err and not run_root.exists()


def test_reproduce_writes_scorecard_and_reuses_finished_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    spec = registry.get_paper("rainbow")
    tiny = [RunPlan("mlp", (*FAST, f"model.width={w}")) for w in (16, 32)]
    monkeypatch.setitem(registry.PAPERS, "rainbow", dataclasses.replace(spec, plan=lambda scale: tiny))
    args = ["reproduce", "rainbow", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[rainbow 2/2" in out and "claim" in out and "status" in out
    rows = json.loads((tmp_path / "reports/rainbow/scorecard.json").read_text())
    assert {r["id"] for r in rows} == {c.id for c in spec.claims}
    assert {"id", "statement", "source", "metric", "expected", "measured", "status"} <= rows[0].keys()
    by_id = {r["id"]: r for r in rows}
    assert by_id["alignment_necessary"]["status"] in ("reproduced", "not_reproduced")
    assert by_id["table1_rainbow_s1"]["status"] == "not_run"  # a paper-scale claim
    assert (tmp_path / "reports/rainbow/figures/accuracy_vs_width.png").is_file()
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "runs").glob("rainbow/mlp/*/summary.json")}
    assert main(args) == 0  # the finished runs are reused, not retrained
    assert {p: p.stat().st_mtime for p in stamps} == stamps
