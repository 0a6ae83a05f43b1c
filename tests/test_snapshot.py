"""Code snapshots for Slurm jobs (common.snapshot) and the provenance a run records from one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from common.errors import UserError
from common.rundir import REPO_ROOT, uncommitted_hash
from common.snapshot import snapshot_code


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "code.py").write_text("VALUE = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / ".gitignore").write_text("runs/\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return root


def test_a_snapshot_holds_the_tree_with_its_uncommitted_changes(checkout: Path, tmp_path: Path) -> None:
    (checkout / "pkg" / "code.py").write_text("VALUE = 2\n")  # uncommitted edit
    (checkout / "pkg" / "new.py").write_text("NEW = True\n")  # untracked, not ignored
    (checkout / "runs").mkdir()
    (checkout / "runs" / "big.bin").write_bytes(b"x" * 100)  # ignored: not code
    snap = snapshot_code(checkout, tmp_path / "code")
    assert (snap.path / "pkg" / "code.py").read_text() == "VALUE = 2\n"
    assert (snap.path / "pkg" / "new.py").exists() and not (snap.path / "runs").exists()
    assert os.access(snap.path / "run.sh", os.X_OK)
    manifest = json.loads((snap.path / "SNAPSHOT.json").read_text())
    assert manifest["snapshot"] == snap.id and manifest["git_sha"] == _git(checkout, "rev-parse", "HEAD").strip()
    assert manifest["git_dirty"] is True and manifest["diff_hash"] == uncommitted_hash(checkout)
    # editing the checkout afterwards changes nothing in the copy, and names a new state
    (checkout / "pkg" / "code.py").write_text("VALUE = 3\n")
    assert (snap.path / "pkg" / "code.py").read_text() == "VALUE = 2\n"
    assert snapshot_code(checkout, tmp_path / "code", write=False).id != snap.id


def test_the_same_state_reuses_its_snapshot(checkout: Path, tmp_path: Path) -> None:
    first = snapshot_code(checkout, tmp_path / "code")
    stamp = (first.path / "SNAPSHOT.json").stat().st_mtime_ns
    again = snapshot_code(checkout, tmp_path / "code")
    assert again == first and (first.path / "SNAPSHOT.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "code").iterdir()) == [first.id]
    assert json.loads((first.path / "SNAPSHOT.json").read_text())["diff_hash"] is None  # a clean tree


def test_a_dry_run_names_the_snapshot_without_writing(checkout: Path, tmp_path: Path) -> None:
    snap = snapshot_code(checkout, tmp_path / "code", write=False)
    assert not (tmp_path / "code").exists() and snap.id == snapshot_code(checkout, tmp_path / "code").id


def test_no_git_checkout_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--no-snapshot"):
        snapshot_code(tmp_path, tmp_path / "code")


def test_code_run_from_a_snapshot_records_it(tmp_path: Path) -> None:
    snap = snapshot_code(REPO_ROOT, tmp_path / "code")
    out = subprocess.run([sys.executable, "-P", "-c", "import json; from common.rundir import git_state, REPO_ROOT; "
                          "print(json.dumps([str(REPO_ROOT), git_state()]))"], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(snap.path)}).stdout
    root, state = json.loads(out)
    assert root == str(snap.path)
    assert state["code_snapshot"] == snap.id and state["git_sha"] == _git(REPO_ROOT, "rev-parse", "HEAD").strip()
    assert state["diff_hash"] == uncommitted_hash(REPO_ROOT)
