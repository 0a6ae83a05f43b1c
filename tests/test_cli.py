"""The `repro` subcommands through their public entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from common.cli import expand_grid, main
from common.registry import discover
from tests.toy_paper import toy_paper


@pytest.fixture
def toy():
    with toy_paper() as spec:
        yield spec


def test_list_json_shape(toy, capsys) -> None:
    assert main(["list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "toy" in listing
    entry = listing["toy"]
    assert entry["experiments"] == ["mlp"]
    assert entry["claims"][0] == {"id": "learns_digits", "kind": "paper", "statement": toy.claims[0].statement,
                                  "source": toy.claims[0].source}


def test_list_text(toy, capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "toy:" in out and "learns_digits [paper]" in out and "trained [check]" in out


@pytest.mark.parametrize(("target", "message"), [
    ("nopaper/mlp", f"Unknown paper 'nopaper'. Valid papers: {', '.join(sorted(discover()))}"),
    ("toy/nope", "Unknown experiment 'nope' of paper 'toy'. Valid experiments: mlp"),
    ("toy", "not of the form <paper>/<experiment>"),
])
def test_unknown_targets_list_the_valid_ones(toy, target: str, message: str, capsys) -> None:
    assert main(["run", target]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_paper_for_reproduce(capsys) -> None:
    assert main(["reproduce", "nopaper"]) == 2
    assert f"Valid papers: {', '.join(sorted(discover()))}" in capsys.readouterr().err


def test_show_prints_the_composed_config(toy, capsys) -> None:
    assert main(["run", "toy/mlp", "model.width=7", "--show"]) == 0
    out = capsys.readouterr().out
    assert "width: 7" in out and "name: mlp" in out and "name: digits" in out


def test_expand_grid() -> None:
    assert expand_grid(["a=1,2", "b=x", "c=[1,2]"]) == [["a=1", "b=x", "c=[1,2]"], ["a=2", "b=x", "c=[1,2]"]]


def test_sweep_runs_the_grid_one_dir_each(toy, repro, run_root: Path) -> None:
    assert repro("sweep", "toy/mlp", "model.width=16,32") == 0
    configs = [OmegaConf.load(p.parent / "config.yaml") for p in run_root.glob("toy/mlp/*/summary.json")]
    assert sorted(c.model.width for c in configs) == [16, 32]


def test_sweep_validates_every_point_first(toy, repro, run_root: Path, capsys) -> None:
    assert repro("sweep", "toy/mlp", "model.width=16,abc") == 2
    assert "expected int" in capsys.readouterr().err and not run_root.exists()


def test_reproduce_writes_scorecard_and_reuses_finished_runs(toy, tmp_path: Path, capsys) -> None:
    args = ["reproduce", "toy", "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[toy 2/2" in out and "measured ± SE" in out and "95 % interval" in out and "paper claims" in out
    rows = json.loads((tmp_path / "reports/toy/scorecard.json").read_text())
    assert [r["id"] for r in rows] == [c.id for c in toy.claims]
    assert {"id", "kind", "statement", "source", "metric", "expected", "measured", "se", "n", "n_of", "interval",
            "note", "status"} <= rows[0].keys()
    learns, permuted, trained = rows
    assert learns["n"] == 300 and learns["n_of"].startswith("test examples") and learns["note"]
    assert learns["interval"][0] < learns["measured"] < learns["interval"][1]
    assert trained["status"] == "reproduced" and learns["status"] in ("reproduced", "inconclusive")
    assert (tmp_path / "reports/toy/figures/accuracy.png").is_file()
    assert (tmp_path / "reports/toy/claims.png").is_file() and (tmp_path / "reports/toy/checks.png").is_file()
    stamps = {p: p.stat().st_mtime for p in (tmp_path / "runs").glob("toy/mlp/*/summary.json")}
    assert main(args) == 0  # the finished runs are reused, not retrained
    assert {p: p.stat().st_mtime for p in stamps} == stamps
