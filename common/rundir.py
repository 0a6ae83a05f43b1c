"""The run-dir contract: layout, lock, atomic JSON writes, provenance.

    runs/<paper>/<experiment>/<run-id>/
      config.yaml  metrics.csv  checkpoints/last.ckpt  summary.json  figures/*.png
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_dir_of(root: str | Path, paper: str, experiment: str, run_id: str) -> Path:
    return Path(root) / paper / experiment / run_id


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's temp files are private (0600)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_summary(run_dir: Path) -> dict | None:
    """summary.json of a run dir, or None when absent or unreadable."""
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def git_state() -> dict[str, Any]:
    """Commit of the code that ran, and whether the work tree had uncommitted changes."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha, "git_dirty": bool(status) if status is not None else None}


def host() -> str:
    return socket.gethostname()


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run dir; a second process gets a UserError.

    flock is released by the kernel when the holder dies (even by SIGKILL), so a crashed run never
    leaves a stale lock behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".lock", "a+")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"The run dir {run_dir} is in use by {holder}. Wait for it to finish, or start a "
                        "separate run with run.id=<new-id>.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {host()}\n")
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def truncate_metrics(metrics_csv: Path, last_epoch: int) -> None:
    """Drop metric rows logged after the checkpoint a run resumes from (epoch > last_epoch).

    Those steps are trained again after the resume; keeping both would log them twice.
    """
    if not metrics_csv.exists():
        return
    with metrics_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    kept = [r for r in rows if not r.get("epoch") or int(float(r["epoch"])) <= last_epoch]
    if fields and len(kept) != len(rows):
        tmp = metrics_csv.with_suffix(".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, metrics_csv)
