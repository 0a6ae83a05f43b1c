"""The run-dir contract: layout, lock, atomic JSON writes, provenance.

    runs/<paper>/<experiment>/<run-id>/
      config.yaml  metrics.csv  checkpoints/last.ckpt  summary.json  figures/*.png
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT_MANIFEST = "SNAPSHOT.json"  # in a code snapshot's root: what it was taken from (common.snapshot)


def run_dir_of(root: str | Path, paper: str, experiment: str, run_id: str) -> Path:
    return Path(root) / paper / experiment / run_id


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: mkstemp's temp files are private (0600)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def read_summary(run_dir: Path) -> dict | None:
    """summary.json of a run dir, or None when absent or unreadable."""
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _git(root: Path, *args: str) -> bytes | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def uncommitted_hash(root: Path) -> str | None:
    """sha256 of a checkout's uncommitted changes (its binary diff against HEAD, then every untracked file that is
    not ignored, by name and content); None when it has none, or is no git checkout."""
    diff = _git(root, "diff", "HEAD", "--binary")
    listed = _git(root, "ls-files", "-z", "--others", "--exclude-standard")
    if diff is None or listed is None:
        return None
    untracked = sorted(n for n in listed.decode().split("\0") if n)
    if not diff and not untracked:
        return None
    digest = hashlib.sha256(diff)
    for name in untracked:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


def git_state() -> dict[str, Any]:
    """The code that ran: its commit, whether tracked files had uncommitted changes, the hash of every uncommitted
    change (`uncommitted_hash`), and, for a Slurm job started from a code snapshot (`common.snapshot`), the
    snapshot's id with the state it was taken from."""
    manifest = REPO_ROOT / SNAPSHOT_MANIFEST
    if manifest.exists():
        taken = json.loads(manifest.read_text())
        return {"git_sha": taken["git_sha"], "git_dirty": taken["git_dirty"], "diff_hash": taken["diff_hash"],
                "code_snapshot": taken["snapshot"]}
    sha = _git(REPO_ROOT, "rev-parse", "HEAD")
    status = _git(REPO_ROOT, "status", "--porcelain", "--untracked-files=no")
    return {"git_sha": sha.decode().strip() if sha is not None else None,
            "git_dirty": bool(status.strip()) if status is not None else None,
            "diff_hash": uncommitted_hash(REPO_ROOT)}


def host() -> str:
    return socket.gethostname()


def machine() -> str:
    """The CPU model and core count of this machine, e.g. 'AMD EPYC 7B13, 2 cores, Linux'."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1).strip() if found else model
    return f"{model}, {os.cpu_count()} cores, {platform.system()}"


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
