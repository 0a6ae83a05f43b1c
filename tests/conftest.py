"""Shared fixtures: a throw-away run root and the CLI called in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.cli import main


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def repro(run_root: Path):
    """Call `repro` in-process with run.root pointing at a temp dir; returns the exit code."""
    def call(*args: str) -> int:
        argv = list(args)
        if argv and argv[0] in ("run", "sweep"):
            argv += [f"run.root={run_root}", "trainer.enable_progress_bar=false"]
        return main(argv)
    return call


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", "ignore"))
