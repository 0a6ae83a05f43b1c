"""Slurm: launchers rendered from one template, `repro submit`, `sweep --slurm`, `reproduce --slurm`, preemption.

The first tests need no cluster. The others run real jobs on a one-node cluster started for the session
(tests/slurm_cluster.py); they are skipped, with the reason, where it cannot start (not root, no apt-get).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from common import registry
from common.cli import main
from common.data.batches import num_batches
from common.errors import UserError
from common.registry import discover
from common.rundir import REPO_ROOT
from common.slurm import Resources, job_id, launcher, render, repro_command
from common.snapshot import snapshot_code
from tests.slurm_cluster import LocalSlurm, Unavailable, install

# tiny runs: the 1,797 scikit-learn digits, 2-layer MLP, one sampling seed
TINY = ["data.name=digits", "data.val_size=200", "data.test_size=300", "model.depth=2", "rainbow.samples=1",
        "rainbow.retrain_epochs=1"]
# every job on the cluster's two CPU cores: no GPUs, one core per task
CPU = ["--gpus-per-node", "0", "--cpus-per-task", "1", "--time", "10:00"]


# --- rendering, no cluster ------------------------------------------------------------------------------


@pytest.mark.parametrize("paper", sorted(discover()))
def test_committed_launchers_are_the_rendered_template(paper: str) -> None:
    path = REPO_ROOT / "slurm" / f"{paper}.sbatch"
    assert path.exists() and path.read_text() == launcher(paper), \
        f"{path} is not the rendered template: run `python -m common.slurm`"


def test_launcher_has_every_line_the_issue_asks_for() -> None:
    text = launcher("rainbow")
    for line in ("#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --time=24:00:00", "#SBATCH --signal=SIGUSR1@90",
                 "#SBATCH --requeue", "#SBATCH --open-mode=append", "export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK",
                 'trainer.num_nodes="$SLURM_JOB_NUM_NODES" trainer.devices="$SLURM_NTASKS_PER_NODE"'):
        assert line in text, line
    assert re.search(r"^srun repro run ", text, re.MULTILINE)
    directives = [i for i, line in enumerate(text.splitlines()) if line.startswith("#SBATCH")]
    commands = [i for i, line in enumerate(text.splitlines()) if line and not line.startswith("#")]
    assert max(directives) < min(commands)  # sbatch reads #SBATCH lines only before the first command
    assert all(text.splitlines()[i - 1].startswith("#") for i in directives)  # each has its comment above
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


def test_multi_node_rendering() -> None:
    text = render("rainbow", Resources(nodes=2, gpus_per_node=4, cpus_per_task=8, time="2-00:00:00",
                                       account="def-lab", partition="gpu"), [["mlp", "model.width=64"]])
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--cpus-per-task=8",
                 "--time=2-00:00:00", "--account=def-lab", "--partition=gpu"):
        assert f"#SBATCH {line}\n" in text, line
    assert "\nset -- mlp model.width=64\n" in text
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)


@pytest.mark.parametrize(("resources", "message"), [
    (Resources(account="x; touch /tmp/owned"), "cannot go on an #SBATCH line"),
    (Resources(time="1:00\n#SBATCH --wrap=id"), "cannot go on an #SBATCH line"),
    (Resources(gpus_per_node=2, tasks_per_node=3), "One task per GPU"),
    (Resources(nodes=0), "--nodes must be at least 1"),
])
def test_bad_resources_are_refused(resources: Resources, message: str) -> None:
    with pytest.raises(UserError, match=message):
        render("rainbow", resources, [["mlp"]])


def _run_script(text: str, tmp_path: Path, env: dict[str, str], *args: str) -> list[str]:
    """Execute a rendered script with a stand-in srun that records its arguments; return them."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$SRUN_ARGS"\n')
    (bin_dir / "srun").chmod(0o755)
    slurm_env = {"SLURM_CPUS_PER_TASK": "1", "SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS_PER_NODE": "4"}
    script = tmp_path / "job.sbatch"
    script.write_text(text)
    subprocess.run(["bash", str(script), *args], check=True, cwd=tmp_path, env={
        **os.environ, **slurm_env, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SRUN_ARGS": str(tmp_path / "args")})
    return (tmp_path / "args").read_text().split("\0")[:-1]


def test_no_value_runs_a_shell_command(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    values = [f"run.id=x; touch {marker}", f"a=$(touch {marker})", f"b=`touch {marker}`", "c='\"", "d=\n touch x"]
    text = render("rainbow", Resources(), [["mlp", *values]])
    assert _run_script(text, tmp_path, {}) == ["repro", "run", "rainbow/mlp", "trainer.num_nodes=2",
                                               "trainer.devices=4", "trainer.enable_progress_bar=false", *values]
    assert not marker.exists()


def test_hand_launcher_takes_its_run_from_its_arguments(tmp_path: Path) -> None:
    text = (REPO_ROOT / "slurm" / "rainbow.sbatch").read_text()
    assert _run_script(text, tmp_path, {}, "cnn", "model.width=8") == [
        "repro", "run", "rainbow/cnn", "trainer.num_nodes=2", "trainer.devices=4", "trainer.enable_progress_bar=false",
        "model.width=8"]


def test_array_task_picks_its_run(tmp_path: Path) -> None:
    text = render("rainbow", Resources(), [["mlp", "model.width=8"], ["cnn", "model.width=x y"]], throttle=1)
    assert "#SBATCH --array=0-1%1\n" in text
    assert _run_script(text, tmp_path, {"SLURM_ARRAY_TASK_ID": "1"})[2:] == [
        "rainbow/cnn", "trainer.num_nodes=2", "trainer.devices=4", "trainer.enable_progress_bar=false",
        "model.width=x y"]


def test_dry_run_prints_the_script_and_submits_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "git").symlink_to(shutil.which("git"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # git, but no sbatch anywhere
    root = tmp_path / "runs"
    assert main(["submit", "rainbow/mlp", "model.width=64", f"run.root={root}", "--nodes", "2",
                 "--gpus-per-node", "4", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash") and "#SBATCH --nodes=2" in out and "#SBATCH --gpus-per-node=4" in out
    assert f"set -- mlp model.width=64 run.root={root}" in out and f"--output={root}/slurm/%x-%j.out" in out
    snapshot = snapshot_code(REPO_ROOT, root / "slurm" / "code", write=False)
    assert f"export PYTHONPATH={snapshot.path}" in out and " -P -m common.cli run " in out
    assert not root.exists()  # the snapshot is named, not written


def test_sbatch_missing_says_how_to_run_locally(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["submit", "rainbow/mlp", "model.width=64", f"run.root={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert "sbatch is not on PATH" in err and "repro run rainbow/mlp model.width=64" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv", [
    ["submit", "rainbow/mlp", "trainer.devices=2"],
    ["sweep", "rainbow/mlp", "trainer.num_nodes=1,2", "--slurm", "--dry-run"],
])
def test_device_counts_come_from_the_options(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    assert "follow the allocation" in capsys.readouterr().err


def test_runs_sharing_a_run_dir_are_refused(capsys) -> None:
    argv = ["sweep", "rainbow/mlp", "trainer.enable_progress_bar=true,false", "--slurm", "--dry-run"]
    assert main(argv) == 2
    assert "same run dir" in capsys.readouterr().err


def test_job_id_names_array_tasks(monkeypatch) -> None:
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    assert job_id() is None
    monkeypatch.setenv("SLURM_JOB_ID", "17")
    assert job_id() == "17"
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "12")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert job_id() == "12_3"


# --- a real cluster -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalSlurm]:
    try:
        install()
    except Unavailable as why:
        pytest.skip(f"no local Slurm cluster: {why}")
    slurm = LocalSlurm()
    try:
        slurm.start()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(slurm.conf))  # sbatch here and every job find this cluster
            yield slurm
    finally:
        slurm.stop()


def _submit(capsys, *argv: str) -> tuple[str, str]:
    """Run `repro <argv>` (a submitting command) in-process; its first job id and its whole output."""
    assert main(list(argv)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    return re.search(r"submitted job (?:array )?(\d+)", out)[1], out


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_submitted_run_finishes_in_its_run_dir(cluster: LocalSlurm, run_root: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "canary-0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("MARKER", str(run_root.parent / "owned"))
    run_id = 'x; touch "$MARKER"; $(touch "$MARKER") `touch "$MARKER"`'
    job, out = _submit(capsys, "submit", "rainbow/mlp", *TINY, "model.width=16", "trainer.max_epochs=1",
                       "logger.wandb.enabled=true", "logger.wandb.mode=offline",  # a key, but no network here
                       f"run.id={run_id}", f"run.root={run_root}", *CPU)
    script = run_root / "slurm" / f"rainbow-mlp-{job}.sbatch"
    assert f"script: {script}" in out and script.exists()
    assert cluster.wait(job) == ["COMPLETED"], (run_root / "slurm" / f"rainbow-mlp-{job}.out").read_text()
    rd = run_root / "rainbow" / "mlp" / run_id
    summary = _summary(rd)
    assert summary["status"] == "finished" and summary["run_id"] == run_id
    for name in ("config.yaml", "metrics.csv", "checkpoints/last.ckpt", "figures/resampling.png"):
        assert (rd / name).is_file(), name
    assert not Path(os.environ["MARKER"]).exists()
    # the W&B run is named after the Slurm job, so a requeued job resumes it
    assert summary["wandb_id"] == f"{cluster.name}-{job}"
    assert len(list(rd.glob(f"wandb/offline-run-*-{cluster.name}-{job}"))) == 1
    for path in [script, run_root / "slurm" / f"rainbow-mlp-{job}.out", *rd.rglob("*")]:
        assert not path.is_file() or b"canary-0123" not in path.read_bytes(), path


def test_two_task_ddp_job_on_cpu(cluster: LocalSlurm, run_root: Path, capsys) -> None:
    job, out = _submit(capsys, "submit", "rainbow/mlp", *TINY, "model.width=16", "trainer.max_epochs=2",
                       "run.id=ddp", f"run.root={run_root}", *CPU, "--tasks-per-node", "2")
    log = run_root / "slurm" / f"rainbow-mlp-{job}.out"
    assert cluster.wait(job) == ["COMPLETED"], log.read_text()
    assert log.read_text().count("finished:") == 1  # rank 0 alone reports (and writes)
    rd = run_root / "rainbow" / "mlp" / "ddp"
    assert _summary(rd)["status"] == "finished" and list(rd.parent.iterdir()) == [rd]
    assert OmegaConf.load(rd / "config.yaml").trainer.devices == 2
    assert _summary(rd)["steps"] == 2 * num_batches(1297, 128, 2)  # each rank trained on half of the 1,297 digits


def test_sweep_is_one_array_with_a_run_dir_per_task(cluster: LocalSlurm, run_root: Path, capsys) -> None:
    job, out = _submit(capsys, "sweep", "rainbow/mlp", *TINY, "trainer.max_epochs=1", "model.width=8,12,16",
                       f"run.root={run_root}", "--slurm", "--throttle", "2", *CPU)
    assert "#SBATCH --array=0-2%2" in (run_root / "slurm" / f"rainbow-mlp-{job}.sbatch").read_text()
    assert cluster.wait(job) == ["COMPLETED"] * 3
    summaries = [_summary(p.parent) for p in run_root.glob("rainbow/mlp/*/summary.json")]
    assert sorted(s["status"] for s in summaries) == ["finished"] * 3
    widths = sorted(OmegaConf.load(p).model.width for p in run_root.glob("rainbow/mlp/*/config.yaml"))
    assert widths == [8, 12, 16]
    assert len(list((run_root / "slurm").glob(f"rainbow-mlp-{job}_*.out"))) == 3


def test_reproduce_runs_the_scorecard_job_after_the_array(cluster: LocalSlurm, tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    """The first two runs of rainbow's smoke plan as the array (the submitting process plans them); the report job,
    which plans again, finds those two finished and the rest not run."""
    spec = registry.get_paper("rainbow")
    first = spec.plan("smoke")[:2]
    monkeypatch.setitem(registry.PAPERS, "rainbow", dataclasses.replace(spec, plan=lambda scale: first))
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    argv = ["reproduce", "rainbow", *TINY, "trainer.max_epochs=1", "--runs", str(runs), "--reports", str(reports),
            "--slurm", *CPU]
    assert main(argv) == 0
    out = capsys.readouterr().out
    array, report = re.findall(r"submitted job (?:array )?(\d+)", out)
    assert cluster.job_field(report, "Dependency").startswith(f"afterok:{array}")
    assert cluster.wait(array, timeout=240) == ["COMPLETED"] * 2
    assert cluster.wait(report) == ["COMPLETED"], (runs / "slurm" / f"rainbow-report-{report}.out").read_text()
    ends = [cluster.job_field(f"{array}_{i}", "EndTime") for i in range(2)]
    assert cluster.job_field(report, "StartTime") >= max(ends)
    rows = json.loads((reports / "rainbow" / "scorecard.json").read_text())
    assert any(r["measured"] is not None for r in rows)  # measured from the runs the array finished


def _epoch_of(ckpt: Path) -> int:
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=False)["epoch"]
    except Exception:  # absent, or being written
        return -1


def _signal_at_epoch(cluster: LocalSlurm, jobs: dict[str, Path], epoch: int, timeout: float = 180) -> None:
    """Send SIGUSR1 to each job as soon as its run dir's last.ckpt reaches `epoch` (all jobs watched at once)."""
    deadline, waiting = time.time() + timeout, dict(jobs)
    while waiting:
        for job, run_dir in list(waiting.items()):
            if _epoch_of(run_dir / "checkpoints" / "last.ckpt") >= epoch:
                cluster.run("scancel", "--signal=USR1", job)
                del waiting[job]
        assert time.time() < deadline, f"{list(waiting.values())} never reached epoch {epoch}"
        time.sleep(0.05)


EPOCHS = 6
# long enough (82 batches per epoch, 4 epochs left after the signal) for it to land mid-epoch, mid-run, on a busy CPU
PREEMPTED = [*TINY, "model.width=64", "data.batch_size=16", f"trainer.max_epochs={EPOCHS}"]


def test_sigusr1_checkpoints_then_requeues_and_resumes_to_the_same_metrics(cluster: LocalSlurm, run_root: Path,
                                                                          capsys) -> None:
    """Two jobs of the same run get what --signal=SIGUSR1@90 sends before the time limit: one requeues and resumes
    to the metrics of an uninterrupted run, the other may not be requeued (--no-requeue) and still checkpoints."""
    reference = subprocess.Popen(  # the same run, uninterrupted, here
        [*repro_command(), "run", "rainbow/mlp", *PREEMPTED, "run.id=straight", f"run.root={run_root}",
         "trainer.enable_progress_bar=false"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    job, _ = _submit(capsys, "submit", "rainbow/mlp", *PREEMPTED, "run.id=preempted", f"run.root={run_root}", *CPU)
    script = run_root / "kept.sbatch"
    script.write_text(render("rainbow", Resources(gpus_per_node=0, cpus_per_task=1, time="10:00"),
                             [["mlp", *PREEMPTED, "run.id=kept", f"run.root={run_root}"]],
                             output=str(run_root / "%j.out"), repro=shlex.join(repro_command())))
    kept_job = cluster.run("sbatch", "--parsable", "--no-requeue", str(script)).stdout.strip()
    rd, kept = run_root / "rainbow" / "mlp" / "preempted", run_root / "rainbow" / "mlp" / "kept"
    _signal_at_epoch(cluster, {job: rd, kept_job: kept}, 1)

    assert cluster.wait(kept_job) == ["FAILED"]  # exit status 75: stopped unfinished, so no afterok fires
    assert "did not requeue" in (run_root / f"{kept_job}.out").read_text()
    saved = torch.load(kept / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] % num_batches(1297, 16, 1) and _summary(kept)["status"] == "running"  # mid-epoch

    log = run_root / "slurm" / f"rainbow-mlp-{job}.out"
    assert cluster.wait(job, timeout=240) == ["COMPLETED"], log.read_text()
    assert cluster.job_field(job, "Restarts") == "1"
    text = log.read_text()
    assert "preempted: Stopped on SIGUSR1 after step" in text and f"Requeued job {job}" in text
    assert reference.wait() == 0, reference.stderr.read()[-2000:]
    straight, resumed = _summary(run_root / "rainbow" / "mlp" / "straight"), _summary(rd)
    assert resumed["status"] == "finished" and resumed["metrics"].keys() == straight["metrics"].keys()
    for key, value in straight["metrics"].items():
        assert resumed["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    with (rd / "metrics.csv").open() as a, (run_root / "rainbow" / "mlp" / "straight" / "metrics.csv").open() as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    # no step is logged twice after the resume; rows may be one short: a step row logged between the preemption
    # checkpoint and the stop can be missing (a known gap, see the Slurm section of the README)
    logged = [(r["epoch"], r["step"]) for r in rows_a if r.get("train/loss_step")]
    assert len(logged) == len(set(logged)) and len(rows_b) - 1 <= len(rows_a) <= len(rows_b)


def test_multi_node_script_passes_sbatch_test_only(cluster: LocalSlurm) -> None:
    """sbatch parses every directive; this one-node CPU cluster cannot place 2 nodes x 4 GPUs, so it says so."""
    big = render("rainbow", Resources(nodes=2, gpus_per_node=4), [["mlp"]])
    done = cluster.run("sbatch", "--test-only", input_text=big, check=False)
    assert done.returncode != 0 and re.search(r"gres|node configuration|Node count", done.stderr), done.stderr
    fits = render("rainbow", Resources(gpus_per_node=0, tasks_per_node=2, cpus_per_task=1, time="10:00"), [["mlp"]])
    done = cluster.run("sbatch", "--test-only", input_text=fits)
    assert "to start at" in done.stderr


def test_sbatch_rejection_shows_its_message(cluster: LocalSlurm, run_root: Path, capsys) -> None:
    assert main(["submit", "rainbow/mlp", f"run.root={run_root}", *CPU, "--partition", "nope"]) == 2
    err = capsys.readouterr().err
    assert "sbatch refused the job" in err and "invalid partition" in err.lower()
    assert not list((run_root / "slurm").glob("*.sbatch"))


def test_jobs_run_the_code_they_were_submitted_with(cluster: LocalSlurm, tmp_path: Path) -> None:
    """Submit two held jobs from a checkout (one from a code snapshot, one with --no-snapshot), edit a source file,
    release them: the first runs the code as submitted, the second the edited tree."""
    project = snapshot_code(REPO_ROOT, tmp_path / "copy").path  # the project as it is now, as a checkout of its own
    (project / "SNAPSHOT.json").unlink()
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    runs = tmp_path / "runs"

    def submit(run_id: str, *options: str) -> tuple[str, str]:
        done = subprocess.run([*repro_command(True), "submit", "rainbow/mlp", *TINY, "model.width=16",
                               "trainer.max_epochs=1", f"run.id={run_id}", f"run.root={runs}", *CPU, "--hold",
                               *options], cwd=project, env={**os.environ, "PYTHONPATH": str(project)},
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return re.search(r"submitted job (\d+)", done.stdout)[1], done.stdout

    frozen, out = submit("frozen")
    snapshot = re.search(r"code:   snapshot (\w+) at (\S+)", out)
    live, out = submit("live", "--no-snapshot")
    assert "the live working tree (--no-snapshot)" in out and cluster.job_field(frozen, "JobState") == "PENDING"
    rundir = project / "common" / "rundir.py"  # the edit: every summary.json the run writes names another host
    rundir.write_text(rundir.read_text().replace("return socket.gethostname()", 'return "edited-after-submission"'))
    cluster.run("scontrol", "release", frozen, live)
    for job in (frozen, live):
        assert cluster.wait(job) == ["COMPLETED"], (runs / "slurm" / f"rainbow-mlp-{job}.out").read_text()
    ran_frozen, ran_live = _summary(runs / "rainbow" / "mlp" / "frozen"), _summary(runs / "rainbow" / "mlp" / "live")
    assert ran_frozen["host"] != "edited-after-submission" and ran_live["host"] == "edited-after-submission"
    assert ran_frozen["code_snapshot"] == snapshot[1] and Path(snapshot[2]) == runs / "slurm" / "code" / snapshot[1]
    assert ran_frozen["git_sha"] == ran_live["git_sha"] and ran_frozen["diff_hash"] is None
    assert "code_snapshot" not in ran_live and ran_live["diff_hash"] is not None  # the edit, hashed
