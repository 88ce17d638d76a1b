"""A private single-node Slurm (munged, MariaDB, slurmdbd, slurmctld, slurmd) for the tests.

Everything lives under one scratch directory: configs, spool and state directories, logs,
the munge key and socket, the database files and two fake GPU devices. Daemons listen on free
loopback ports, and clients find the cluster through ``SLURM_CONF`` (see :attr:`env`), so a
machine that already runs Slurm or munge is left alone: nothing under /etc, /run or /var is
written. Every daemon runs in the foreground as a child of the test process and is stopped by
its pid.

Layout of the cluster (what the tests rely on):

* one node, the host's short name, with the CPUs that ``slurmd -C`` reports, ``RealMemory``
  below ``slurmd -C``'s (a job that asks for more than the node has is rejected at sbatch
  time through ``EnforcePartLimits=ALL`` instead of pending for ever with
  ``Reason=PartitionConfig``), and ``Gres=gpu:2`` backed by two character devices made with
  ``mknod ... c 1 3`` (``/dev/null``'s numbers: nothing reads them);
* partitions ``cpu`` (default) and ``gpu`` on that node;
* ``select/cons_tres`` so ``--gpus`` works, accounting through slurmdbd into MariaDB so
  ``sacct`` lists finished jobs with their partition and ``AllocTRES`` (``gres/gpu``), and
  ``AccountingStoreFlags=job_comment`` so it also shows the comment the Snakemake executor
  gives each job (``rule_<name>_wildcards_<values>``).

Run by hand (as root) to poke at it::

    python -m tests.slurm.cluster /tmp/slurm-play    # starts it, prints the env, waits for Enter
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Program we run -> the Debian 12 package `make slurm-deps` installs for it.
PACKAGES = {
    "slurmctld": "slurm-wlm",
    "slurmd": "slurm-wlm",
    "sbatch": "slurm-wlm",
    "slurmdbd": "slurmdbd",
    "munged": "munge",
    "mariadbd": "mariadb-server",
}
GPUS = 2
# Memory kept back from what slurmd -C reports, so the node never promises more than exists.
MEMORY_MARGIN_MB = 2048
START_TIMEOUT_S = 60


#: What the Slurm test's check saw (wall times, sacct summary), printed at the end of the
#: session by tests/slurm/conftest.py.
SUMMARY: list[str] = []


def missing_programs() -> list[str]:
    """Debian packages whose programs are not on PATH (or in /usr/sbin)."""
    return [pkg for prog, pkg in PACKAGES.items() if _which(prog) is None]


def _which(prog: str) -> str | None:
    return shutil.which(prog, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, ready, timeout: float = START_TIMEOUT_S, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting:\n{tail}")
        if ready():
            return
        time.sleep(0.2)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} not ready after {timeout} s:\n{tail}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def node_hardware() -> dict[str, str]:
    """``slurmd -C``'s first line as a dict (NodeName, CPUs, ..., RealMemory)."""
    out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.splitlines()[0].split())


class LocalSlurm:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent, also after a failed start)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.hw = node_hardware()
        self.node = self.hw["NodeName"]
        self.cpus = int(self.hw["CPUs"])
        self.memory_mb = int(self.hw["RealMemory"]) - MEMORY_MARGIN_MB
        self.ports = {name: _free_port() for name in ("mysql", "dbd", "ctld", "slurmd")}
        self.conf = self.root / "etc" / "slurm.conf"
        self.munge_socket = self.root / "munge" / "munge.socket"

    @property
    def env(self) -> dict[str, str]:
        """Environment for clients (sbatch, squeue, sacct, scontrol, srun) and daemons."""
        return {
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    # -- files ------------------------------------------------------------------------------
    def _write_files(self) -> None:
        r = self.root
        for d in ("etc", "munge", "db", "ctld", "slurmd", "log", "run", "dev", "bin"):
            (r / d).mkdir(parents=True, exist_ok=True)
        # Inside a job, snakemake-executor-plugin-slurm-jobstep (0.6.1) calls srun with every
        # SLURM_* variable but a few removed, SLURM_CONF included, so srun looks for
        # /etc/slurm/slurm.conf; a cluster that lives elsewhere is found through this wrapper.
        srun = r / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n')
        os.chmod(srun, 0o755)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        gpus = []
        for i in range(GPUS):
            dev = r / "dev" / f"fakegpu{i}"
            if not dev.exists():
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))  # S_IFCHR, like /dev/null
            gpus.append(dev)
        auth = f"AuthType=auth/munge\nAuthInfo=socket={self.munge_socket}\n"
        hw = " ".join(f"{k}={v}" for k, v in self.hw.items() if k not in ("NodeName", "RealMemory"))
        self.conf.write_text(
            f"ClusterName=prefsweeptest\n"
            f"SlurmctldHost={self.node}\n"
            f"SlurmctldPort={self.ports['ctld']}\n"
            f"SlurmdPort={self.ports['slurmd']}\n"
            f"SlurmUser=root\n"
            f"{auth}"
            f"StateSaveLocation={r / 'ctld'}\n"
            f"SlurmdSpoolDir={r / 'slurmd'}\n"
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}\n"
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}\n"
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}\n"
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}\n"
            "ProctrackType=proctrack/linuxproc\n"
            "TaskPlugin=task/none\n"
            "MpiDefault=none\n"
            "ReturnToService=2\n"
            "SchedulerType=sched/backfill\n"
            "SelectType=select/cons_tres\n"
            "SelectTypeParameters=CR_Core_Memory\n"
            "DefMemPerCPU=1000\n"
            "GresTypes=gpu\n"
            "AccountingStorageType=accounting_storage/slurmdbd\n"
            "AccountingStorageHost=localhost\n"
            f"AccountingStoragePort={self.ports['dbd']}\n"
            # slurmctld -> slurmdbd authenticates through this socket (AuthInfo is not used there)
            f"AccountingStoragePass={self.munge_socket}\n"
            "AccountingStorageTRES=gres/gpu\n"
            "AccountingStoreFlags=job_comment\n"
            "JobAcctGatherType=jobacct_gather/none\n"
            "JobCompType=jobcomp/none\n"
            # Finished jobs stay visible to squeue for a while (the executor may poll with it).
            "MinJobAge=300\n"
            "KillWait=5\n"
            "MailProg=/bin/true\n"
            "EnforcePartLimits=ALL\n"
            f"NodeName={self.node} {hw} RealMemory={self.memory_mb} Gres=gpu:{GPUS} State=UNKNOWN\n"
            f"PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP\n"
            f"PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP\n"
        )
        devs = ",".join(str(d) for d in gpus)
        (r / "etc" / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File={devs}\n")
        dbd = r / "etc" / "slurmdbd.conf"
        dbd.write_text(
            f"{auth}"
            "DbdHost=localhost\n"
            f"DbdPort={self.ports['dbd']}\n"
            "SlurmUser=root\n"
            f"PidFile={r / 'run' / 'slurmdbd.pid'}\n"
            f"LogFile={r / 'log' / 'slurmdbd.log'}\n"
            "StorageType=accounting_storage/mysql\n"
            "StorageHost=127.0.0.1\n"
            f"StoragePort={self.ports['mysql']}\n"
            "StorageUser=root\n"
            "StorageLoc=slurm_acct_db\n"
        )
        os.chmod(dbd, 0o600)

    # -- daemons ----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.root / "log" / f"{name}.out", "ab")
        proc = subprocess.Popen(
            [_which(argv[0]) or argv[0], *argv[1:]], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **self.env}, start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def _client(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **self.env}, check=check, timeout=30)

    def start(self) -> "LocalSlurm":
        r = self.root
        self._write_files()
        p = self._spawn("munged", [
            "munged", "--foreground", "--force", f"--socket={self.munge_socket}",
            f"--key-file={r / 'munge' / 'munge.key'}", f"--pid-file={r / 'run' / 'munged.pid'}",
            f"--log-file={r / 'log' / 'munged.log'}", f"--seed-file={r / 'munge' / 'munged.seed'}",
        ])
        _wait("munged", self.munge_socket.exists, proc=p, log=r / "log" / "munged.log")

        # A throw-away MariaDB: no grant tables (slurmdbd's user and password are then accepted
        # as they are), loopback only, small buffers. slurmdbd creates its database itself.
        p = self._spawn("mariadbd", [
            "mariadbd", "--no-defaults", f"--datadir={r / 'db'}", f"--socket={r / 'run' / 'mysql.sock'}",
            f"--port={self.ports['mysql']}", "--bind-address=127.0.0.1", "--user=root",
            "--skip-grant-tables", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M",
            f"--pid-file={r / 'run' / 'mariadb.pid'}", f"--log-error={r / 'log' / 'mariadb.log'}",
        ])
        _wait("mariadbd", lambda: _port_open(self.ports["mysql"]), proc=p, log=r / "log" / "mariadb.log")

        p = self._spawn("slurmdbd", ["slurmdbd", "-D"])
        _wait("slurmdbd", lambda: _port_open(self.ports["dbd"]), proc=p, log=r / "log" / "slurmdbd.log")

        p = self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        _wait("slurmctld", lambda: self._client("scontrol", "ping", check=False).stdout.count("UP") > 0,
              proc=p, log=r / "log" / "slurmctld.log")

        p = self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        _wait("slurmd", self._node_idle, proc=p, log=r / "log" / "slurmd.log")
        return self

    def _node_idle(self) -> bool:
        out = self._client("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
        return bool(out) and all(state == "idle" for state in out)

    def stop(self) -> None:
        """Cancel what is still queued, then stop the daemons we started, newest first, by pid."""
        if any(name == "slurmctld" and p.poll() is None for name, p in self.procs):
            self._client("scancel", "--full", "--user", str(os.getuid()), check=False)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self._client("squeue", "-h", check=False).stdout.strip():
                time.sleep(0.5)
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self.procs.clear()

    def logs(self) -> str:
        """The daemons' log tails, for a failing test's message."""
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            parts.append(f"== {log.name}\n{log.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    root = Path((argv or sys.argv[1:] or ["/tmp/prefsweep-slurm"])[0])
    cluster = LocalSlurm(root)
    t0 = time.monotonic()
    try:
        cluster.start()
        print(f"started in {time.monotonic() - t0:.1f} s; export SLURM_CONF={cluster.conf}")
        input("Enter stops it ")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
