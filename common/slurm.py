"""Slurm: render launchers from `slurm/launcher.sbatch.in`, submit them, and requeue a running job.

`render()` fills the template for a paper: with no runs it is the paper's hand-written launcher
`slurm/<paper>.sbatch` (arguments from the sbatch command line; `python -m common.slurm` rewrites them all),
with one run it is what `repro submit` submits, with several it is a job array, one task per run. Values
reach the script in two ways, both inert: run arguments as shell words quoted by `shlex.quote`, resource
values on `#SBATCH` lines that only accept characters no shell or sbatch parser reads as syntax. Nothing from
the environment (WANDB_API_KEY and other secrets) is ever written into a script: jobs inherit it from sbatch.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from common.errors import UserError
from common.rundir import REPO_ROOT

TEMPLATE = REPO_ROOT / "slurm" / "launcher.sbatch.in"
# what an #SBATCH value may hold: sbatch splits these lines at blanks and reads quotes, and a newline would
# start a shell line
_DIRECTIVE_VALUE = re.compile(r"[A-Za-z0-9_.,:@%+/=-]+")
_PLACEMENT_KEYS = ("trainer.devices", "trainer.num_nodes")
_PLACEHOLDER = re.compile(r"^@([A-Z_]+)@\n|@([A-Z_]+)@", re.MULTILINE)


@dataclass(frozen=True)
class Resources:
    """What each job (or array task) asks for; `tasks_per_node=None`: one per GPU, or 1 without GPUs."""

    nodes: int = 1
    gpus_per_node: int = 1
    tasks_per_node: int | None = None
    cpus_per_task: int = 4
    time: str = "24:00:00"
    account: str | None = None
    partition: str | None = None
    hold: bool = False  # submitted held: it waits for `scontrol release <job id>`

    def checked(self) -> Resources:
        """These resources with tasks_per_node filled in, or a UserError naming the bad option."""
        tasks = self.tasks_per_node or max(self.gpus_per_node, 1)
        for option, value, least in (("--nodes", self.nodes, 1), ("--gpus-per-node", self.gpus_per_node, 0),
                                     ("--tasks-per-node", tasks, 1), ("--cpus-per-task", self.cpus_per_task, 1)):
            if value < least:
                raise UserError(f"{option} must be at least {least}, got {value}.")
        if self.gpus_per_node and tasks != self.gpus_per_node:
            raise UserError(f"One task per GPU: --tasks-per-node ({tasks}) must equal --gpus-per-node "
                            f"({self.gpus_per_node}); leave --tasks-per-node out to get that.")
        for option, value in (("--time", self.time), ("--account", self.account), ("--partition", self.partition)):
            if value is not None:
                directive_value(value, option)
        return replace(self, tasks_per_node=tasks)


def directive_value(value: str, what: str) -> str:
    """`value` if it is safe on an #SBATCH line, else a UserError."""
    if not _DIRECTIVE_VALUE.fullmatch(value):
        raise UserError(f"{what} {value!r} cannot go on an #SBATCH line: use only letters, digits and "
                        "_ . , : @ % + / = - (no blanks, quotes or shell characters).")
    return value


def check_overrides(overrides: list[str]) -> None:
    """The launcher sets the Trainer's devices and nodes from the allocation: overrides may not."""
    for item in overrides:
        if item.partition("=")[0] in _PLACEMENT_KEYS:
            raise UserError(f"'{item}': under Slurm the Trainer's devices and nodes follow the allocation. Use "
                            "--nodes and --gpus-per-node (or --tasks-per-node without GPUs) instead.")


def _optional(comment: str, directive: str | None) -> str:
    return f"# {comment}\n#SBATCH {directive}" if directive else ""


def render(paper: str, resources: Resources, runs: list[list[str]] | None = None, *, job_name: str | None = None,
           output: str = "%x-%j.out", throttle: int | None = None, repro: str = "repro",
           workdir: Path | None = None, code: Path | None = None) -> str:
    """The batch script of `paper`'s launcher.

    runs: None for the hand-written launcher (its runs come from the sbatch command line), else each run's
    `[experiment, key=value, ...]`: one run fixes the script's arguments, several make a job array whose
    task i runs runs[i] (`throttle`: at most that many tasks at once). `repro` is the command that runs
    `repro`, `workdir` the directory the job starts in, `code` the snapshot of the code it runs (common.snapshot;
    None: the live working tree).
    """
    res = resources.checked()
    gpus = f"--gpus-per-node={res.gpus_per_node}" if res.gpus_per_node else None
    array = None
    if runs is not None and len(runs) > 1:
        array = f"--array=0-{len(runs) - 1}" + (f"%{throttle}" if throttle else "")
    values = {
        "PAPER": paper, "JOB_NAME": directive_value(job_name or paper, "The job name"), "NODES": str(res.nodes),
        "TASKS_PER_NODE": str(res.tasks_per_node), "CPUS_PER_TASK": str(res.cpus_per_task), "TIME": res.time,
        "GPUS_PER_NODE": _optional("GPUs per node: one per task.", gpus) or
        "# No GPUs: the ranks train on CPU cores (DDP over gloo).",
        "ACCOUNT": _optional("Account charged for the job.", res.account and f"--account={res.account}"),
        "PARTITION": _optional("Partition (queue) the job waits in.", res.partition and f"--partition={res.partition}"),
        "OUTPUT": directive_value(output, "The log path"),
        "ARRAY": _optional("One array task per run; %N after the range: at most N tasks at once.", array),
        "HOLD": _optional("Submitted held: it starts after `scontrol release <job id>`.", res.hold and "--hold"),
        "ARGUMENTS": _arguments(runs, workdir, code), "REPRO": repro,
    }
    # one pass, so no filled-in value is ever scanned for placeholders; a placeholder alone on its line that
    # is empty leaves no line
    return _PLACEHOLDER.sub(lambda m: values[m[1]] + "\n" if m[1] and values[m[1]] else
                            "" if m[1] else values[m[2]], TEMPLATE.read_text())


def _arguments(runs: list[list[str]] | None, workdir: Path | None, code: Path | None) -> str:
    """Shell lines fixing the script's arguments: `set -- <run>`, or a `case` over the array task id; the
    submission directory and the code snapshot to import from."""
    lines = [f"# the directory the job was submitted from\ncd {shlex.quote(str(workdir))}"] if workdir else []
    if code is not None:
        lines.append("# the code as it was at submission (a frozen copy; `python -P` keeps the working tree off the "
                     f"import path)\nexport PYTHONPATH={shlex.quote(str(code))}${{PYTHONPATH:+:$PYTHONPATH}}")
    if runs is not None and len(runs) == 1:
        lines.append(f"# the run this job was submitted for\nset -- {shlex.join(runs[0])}")
    elif runs is not None:
        cases = "\n".join(f"  {i}) set -- {shlex.join(run)} ;;" for i, run in enumerate(runs))
        lines.append(f"# the run of each array task\ncase $SLURM_ARRAY_TASK_ID in\n{cases}\nesac")
    return "\n".join(lines)


def launcher(paper: str) -> str:
    """The committed `slurm/<paper>.sbatch`: the template with the default resources."""
    return render(paper, Resources())


def repro_command(snapshot: bool = False) -> list[str]:
    """`repro` as this interpreter runs it: what a submitted job runs, whatever its PATH. With `snapshot`, `-P`
    leaves the current directory off the import path, so that the code snapshot on PYTHONPATH is what runs."""
    return [sys.executable, *(["-P"] if snapshot else []), "-m", "common.cli"]


def require_sbatch(local_hint: str) -> None:
    if shutil.which("sbatch") is None:
        raise UserError(f"sbatch is not on PATH: this machine cannot submit Slurm jobs. Submit from a cluster's "
                        f"login node, or run here without Slurm: {local_hint}")


def sbatch(options: list[str], local_hint: str) -> str:
    """Run `sbatch --parsable <options>` and return the job id; a UserError if sbatch is missing or refuses."""
    require_sbatch(local_hint)
    done = subprocess.run(["sbatch", "--parsable", *options], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"sbatch refused the job (exit {done.returncode}):\n{done.stderr.strip()}")
    return done.stdout.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"


def submit_script(text: str, folder: Path, job_name: str, local_hint: str) -> tuple[str, Path]:
    """Write the script into `folder`, submit it; return the job id and the script, named `<job name>-<id>.sbatch`
    like its log."""
    require_sbatch(local_hint)  # before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    pending = folder / f".{job_name}-{hashlib.sha1(text.encode()).hexdigest()[:12]}.sbatch"
    pending.write_text(text)
    try:
        job = sbatch([str(pending)], local_hint)
    except UserError:
        pending.unlink()
        raise
    script = folder / f"{job_name}-{job}.sbatch"
    pending.rename(script)  # sbatch keeps its own copy: the name can change now
    return job, script


def job_id() -> str | None:
    """This process's Slurm job as `scontrol` names it (`<array job>_<task>` for an array task), or None."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def requeue() -> str:
    """Ask Slurm to requeue this job; say what happened and how the run resumes."""
    job = job_id()
    if job is None:
        return "Run the same command again to resume from that checkpoint."
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    except FileNotFoundError:
        return f"scontrol is not on PATH, so job {job} was not requeued: submit it again to resume."
    if done.returncode == 0:
        return f"Requeued job {job}: it resumes from that checkpoint."
    return f"Slurm did not requeue job {job} ({done.stderr.strip()}): submit it again to resume."


def write_launchers(papers: list[str]) -> list[Path]:
    """(Re)write `slurm/<paper>.sbatch` for every paper."""
    paths = []
    for paper in papers:
        path = REPO_ROOT / "slurm" / f"{paper}.sbatch"
        path.write_text(launcher(paper))
        paths.append(path)
    return paths


if __name__ == "__main__":
    from common.registry import discover

    for written in write_launchers(sorted(discover())):
        print(written.relative_to(REPO_ROOT))
