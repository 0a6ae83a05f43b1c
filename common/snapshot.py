"""A frozen copy of the code a Slurm job was submitted with: `<run.root>/slurm/code/<id>/`.

A job may wait a day in the queue; without a copy it runs whatever the working tree holds when it starts, and
an array edited halfway runs two programs. At submission the working tree's files that git knows or would add
(tracked, plus untracked files not ignored: the committed tree with every uncommitted change) are copied into a
folder named by the hash of their paths, modes and contents, reused by every submission of the same state. The
jobs run `python -P -m common.cli` with that folder first on PYTHONPATH, from the submission directory (so that
relative run roots and data paths mean what they meant there). `SNAPSHOT.json` in the copy names the commit, the
hash of the uncommitted changes and the snapshot; every run started from it records them (`common.rundir`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.rundir import SNAPSHOT_MANIFEST, now, uncommitted_hash, write_json_atomic


@dataclass(frozen=True)
class Snapshot:
    id: str
    path: Path  # <into>/<id>


def _git(root: Path, *args: str) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True)
    except OSError as err:
        raise UserError(f"Cannot snapshot the code at {root}: git cannot run ({err}). Install git, or pass "
                        "--no-snapshot to let the jobs run the live working tree.") from None
    if done.returncode != 0:
        raise UserError(f"Cannot snapshot the code at {root} (`git {' '.join(args)}`: "
                        f"{done.stderr.decode(errors='replace').strip()}). Submit from a git checkout of the project, "
                        "or pass --no-snapshot to let the jobs run the live working tree.")
    return done.stdout


def _files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files that exist (a deleted tracked file is left out, as the tree is)."""
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split(b"\0")
    names = sorted({n.decode() for n in listed if n})
    return [n for n in names if (root / n).is_file() or (root / n).is_symlink()]


def snapshot_id(root: Path, files: list[str]) -> str:
    digest = hashlib.sha256()
    for name in files:
        path = root / name
        content = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        digest.update(f"{name}\0{os.access(path, os.X_OK)}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()[:16]


def snapshot_code(root: Path, into: Path, *, write: bool = True) -> Snapshot:
    """Copy the code at `root` into `into/<id>/` (or find the copy already there) and return it; `write=False`
    only names it (a dry run)."""
    files = _files(root)
    ident = snapshot_id(root, files)
    snap = Snapshot(ident, into / ident)
    if not write or (snap.path / SNAPSHOT_MANIFEST).exists():
        return snap
    into.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{snap.id}-", dir=into))
    for name in files:
        source, target = root / name, staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    head = _git(root, "rev-parse", "HEAD").decode().strip()
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no").strip())
    write_json_atomic(staging / SNAPSHOT_MANIFEST, {"snapshot": snap.id, "git_sha": head, "git_dirty": dirty,
                                           "diff_hash": uncommitted_hash(root), "source": str(root),
                                           "created": now()})
    try:
        staging.rename(snap.path)
    except OSError:  # another submission of the same state won the race: its copy is the same
        shutil.rmtree(staging, ignore_errors=True)
    return snap
