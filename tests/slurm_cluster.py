"""A private one-node Slurm cluster on this machine, for the tests of tests/test_slurm.py.

Debian's slurm-wlm and munge (installed with apt-get when missing), run as root from a fresh temporary
folder: its own slurm.conf, munge key and socket, state, logs and free ports, so neither an installed
cluster nor a second test session is disturbed. Clients find it through `SLURM_CONF`, which jobs inherit.
Choices that make it work on a container without systemd or cgroups: daemons started by hand,
proctrack/linuxproc + task/none, an explicit 127.0.0.1 for every address, the node named `localhost` (the
DDP ranks' rendezvous address), and a short credential lifetime so that a requeued job restarts in
seconds rather than minutes.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("munged", "slurmctld", "slurmd")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


class Unavailable(Exception):
    """This machine cannot run the cluster (not root, or the packages cannot be installed): skip."""


def install() -> None:
    """Install slurm-wlm and munge with apt-get unless their programs are already there."""
    if os.geteuid() != 0:
        raise Unavailable("the local Slurm cluster needs root (it starts munged, slurmctld and slurmd)")
    if all(shutil.which(p) for p in (*DAEMONS, "sbatch", "mungekey")):
        return
    if shutil.which("apt-get") is None:
        raise Unavailable("slurm-wlm and munge are not installed and there is no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                               *PACKAGES]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalSlurm:
    """start() -> a running cluster whose clients need `env` (SLURM_CONF); stop() ends jobs and daemons."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="repro-slurm-"))
        self.dir.chmod(0o755)  # munged refuses a socket folder that others cannot traverse
        self.conf = self.dir / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.name = "reprotest"

    def run(self, *cmd: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, capture_output=True, text=True, env=self.env, input=input_text)
        if check and done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()}\n{self.logs()}")
        return done

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-15:])
                         for p in sorted(self.dir.glob("*.log")))

    def _node_line(self) -> str:
        """This machine's topology as slurmd sees it, with 10 % less memory (less than configured drains a node)."""
        found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
        memory = int(re.search(r"RealMemory=(\d+)", found)[1])
        topology = re.sub(r"^NodeName=\S+ ", "", re.sub(r"RealMemory=\d+", f"RealMemory={memory * 9 // 10}", found))
        return f"NodeName=localhost NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 {topology}"

    def _write_config(self) -> None:
        d = self.dir
        for sub in ("state", "spool"):
            (d / sub).mkdir()
        self.conf.write_text(f"""\
ClusterName={self.name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
# a requeued job may start again cred_expire seconds after it ended (default 120)
AuthInfo=socket={d}/munge.socket,cred_expire=10
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
# no cgroups in a container: track processes by their parent, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs stay visible to scontrol for an hour (there is no accounting database)
MinJobAge=3600
# a dependency that can never be met cancels the dependent job instead of leaving it pending
DependencyParameters=kill_invalid_depend
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=5
MpiDefault=none
MailProg=/bin/true
{self._node_line()} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")

    def start(self) -> LocalSlurm:
        install()
        self._write_config()
        key = self.dir / "munge.key"
        subprocess.run(["mungekey", "--create", f"--keyfile={key}"], check=True, capture_output=True)
        d = self.dir
        self.run("munged", f"--socket={d}/munge.socket", f"--key-file={key}", f"--pid-file={d}/munged.pid",
                 f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed")
        self.run("slurmctld", "-c", "-f", str(self.conf))
        self.run("slurmd", "-c", "-N", "localhost", "-f", str(self.conf))
        deadline = time.time() + 60
        while time.time() < deadline:
            state = self.run("sinfo", "-h", "-n", "localhost", "-o", "%T", check=False).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return self
            if state.startswith(("down", "drain")):
                self.run("scontrol", "update", "nodename=localhost", "state=resume", check=False)
            time.sleep(0.5)
        raise RuntimeError(f"the node is not idle after 60 s (state {state!r})\n{self.logs()}")

    def stop(self) -> None:
        """Cancel every job (its processes would outlive slurmd), stop the daemons, delete the folder."""
        if (self.dir / "slurmctld.pid").exists():
            self.run("scancel", "--full", "--partition=debug", check=False)
            deadline = time.time() + 30
            while time.time() < deadline and self.run("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for daemon in ("slurmd", "slurmctld", "munged"):  # munged last: the others need it to shut down
            _stop_pid(self.dir / f"{daemon}.pid", daemon)
        shutil.rmtree(self.dir, ignore_errors=True)

    def job_states(self, job: str) -> list[str]:
        """The state of the job, or of each task of an array."""
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        return re.findall(r"JobState=(\S+)", out)

    def job_field(self, job: str, field: str) -> str:
        return re.search(rf"\b{field}=(\S*)", self.run("scontrol", "-o", "show", "job", job).stdout)[1]

    def wait(self, job: str, timeout: float = 120) -> list[str]:
        """Poll (every 0.5 s: `sbatch --wait` backs off to tens of seconds) until the job and all its tasks
        have ended; their final states."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            states = self.job_states(job)
            if states and all(s in FINAL_STATES for s in states):
                return states
            time.sleep(0.5)
        raise TimeoutError(f"job {job} still {self.job_states(job)} after {timeout} s\n{self.logs()}")


def _stop_pid(pid_file: Path, name: str) -> None:
    """TERM the daemon whose pid the file holds (if it is alive and is `name`); KILL it after 20 s."""
    try:
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}/comm").read_text().strip() != name:
            return
    except (OSError, ValueError):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 20
    while time.time() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, i.e. neither gone nor a zombie (a container's init may reap late)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
