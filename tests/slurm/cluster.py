"""A real, throw-away, single-node SLURM cluster on localhost (for tests).

Usage::

    from tests.slurm.cluster import slurm_cluster

    with slurm_cluster(tmp_path / "slurm") as cluster:
        subprocess.run(
            [snakemake, "--workflow-profile", "profiles/slurm",
             *cluster.snakemake_args(), ...],
            env=cluster.env, check=True,
        )
        assert cluster.completed_jobs()  # job records written by slurmctld

Requirements: root, Debian packages ``slurm-wlm`` and ``munge``
(``scripts/install_slurm.sh`` installs them).  No accounting database
(slurmdbd) is used; see :meth:`SlurmCluster.snakemake_args` for what that
implies for the Snakemake SLURM executor.

What it does:

* starts a private ``munged`` (own key, socket, pid/log files; it never
  touches ``/etc/munge`` or a system munged),
* writes ``/etc/slurm/slurm.conf`` (it has to live there: the
  slurm-jobstep executor strips every ``SLURM_*`` variable, SLURM_CONF
  included, before its nested ``srun``).  An existing file is backed up to
  ``/etc/slurm/slurm.conf.bench_powerprop-backup`` and restored on teardown,
* starts ``slurmctld`` and ``slurmd -N localhost`` in the foreground (as our
  children, on free TCP ports), waits until ``sinfo`` reports the node idle,
* on exit cancels all jobs, stops the daemons by PID (and any ``slurmstepd``
  left in their sessions), restores the config and removes the socket dir.

State from a run that was killed before its teardown (daemons, our
slurm.conf) is detected through ``/tmp/bench_powerprop_slurm_state.json`` and
cleaned up before a new cluster starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
SLURM_CONF_BACKUP = Path("/etc/slurm/slurm.conf.bench_powerprop-backup")
STATE_FILE = Path("/tmp/bench_powerprop_slurm_state.json")
LOCK_FILE = Path("/tmp/bench_powerprop_slurm.lock")
CONF_MARKER = "# managed by bench_powerprop tests/slurm/cluster.py"
PARTITION = "debug"
NODE = "localhost"
# process names (/proc/<pid>/comm) we are allowed to kill on cleanup
_DAEMON_NAMES = {"munged", "slurmctld", "slurmscriptd", "slurmd", "slurmstepd"}


class SlurmClusterError(RuntimeError):
    """The test cluster could not be started (message includes log tails)."""


@dataclass(frozen=True)
class SlurmCluster:
    """Handle yielded by :func:`slurm_cluster`.

    Attributes:
        partition: name of the (only, default) partition, ``"debug"``.
        node: node name, ``"localhost"``.
        cpus / real_memory_mb / def_mem_per_cpu_mb: what the node offers.
        workdir: the directory passed to :func:`slurm_cluster`; holds
            ``state/`` (StateSaveLocation), ``log/`` (daemon logs) and
            ``jobcomp.txt``.
        conf_path: ``/etc/slurm/slurm.conf``.
        env: environment to run ``sbatch``/``squeue``/``snakemake`` with:
            ``os.environ`` minus ``SLURM_CONF`` and all ``SLURM_*``/
            ``SBATCH_*``/``SRUN_*`` variables (so the default config is
            used and an outer SLURM job cannot leak in).  Nothing needs to be
            added; prepend your virtualenv's ``bin`` to ``PATH`` yourself if
            rule shell commands must find its tools.
        slurmctld_log / slurmd_log / jobcomp_log: files written by the
            daemons; ``jobcomp_log`` gets one line per finished job.
    """

    partition: str
    node: str
    cpus: int
    real_memory_mb: int
    def_mem_per_cpu_mb: int
    workdir: Path
    conf_path: Path
    env: dict = field(repr=False)
    slurmctld_log: Path
    slurmd_log: Path
    jobcomp_log: Path

    def snakemake_args(self, init_seconds: int = 1) -> list[str]:
        """Command-line overrides needed to use ``profiles/slurm`` here.

        * ``--slurm-status-command squeue``: there is no slurmdbd, so
          ``sacct`` cannot report job states and the executor would wait
          forever.  ``squeue`` sees finished jobs for ``MinJobAge`` (300 s).
        * ``--slurm-init-seconds-before-status-checks 1`` (default 40 s).
        * ``--default-resources`` is *not* overridden: the partition is the
          cluster default, the plugin picks it from ``sinfo``.
        """
        return [
            "--slurm-status-command",
            "squeue",
            "--slurm-init-seconds-before-status-checks",
            str(init_seconds),
        ]

    def completed_jobs(self) -> dict[str, dict[str, str]]:
        """Finished jobs from the jobcomp log: ``{job_id: {field: value}}``.

        Fields include ``JobState`` (e.g. ``COMPLETED``), ``Name``,
        ``Partition``, ``NodeList``, ``ProcCnt``, ``ExitCode``, ``WorkDir``.
        """
        jobs: dict[str, dict[str, str]] = {}
        if not self.jobcomp_log.exists():
            return jobs
        for line in self.jobcomp_log.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "JobId" in fields:
                jobs[fields["JobId"]] = fields
        return jobs

    def run(self, *args: str, timeout: float = 30, check: bool = True):
        """Run a SLURM client command (``sinfo``, ``squeue``, ...) here."""
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True,
            timeout=timeout, check=check,
        )


# --------------------------------------------------------------------------
# helpers


def _clean_env() -> dict:
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_"))
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_stat(pid: int) -> tuple[str, int, str] | None:
    """(comm, session id, start time) of a process, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    rest = raw[raw.rindex(")") + 2 :].split()
    # rest[0] = state (field 3); session = field 6; starttime = field 22
    if rest[0] in ("Z", "X"):  # zombies (pid 1 here may never reap them)
        return None
    return comm, int(rest[3]), rest[19]


def _pids_in_sessions(sids: set[int]) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st and st[1] in sids and st[0] in _DAEMON_NAMES:
                out.append(int(entry.name))
    return out


def _stepds_in(run_dir: str) -> list[int]:
    """slurmstepd processes started by our slurmd (their cwd is run_dir)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _proc_stat(int(entry.name))
            if st and st[0] == "slurmstepd":
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "cwd").startswith(run_dir):
                        out.append(int(entry.name))
    return out


def _with_descendants(pids: list[int]) -> list[int]:
    """pids plus all their live descendants (job processes of a slurmstepd)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = (entry / "stat").read_text()
                ppid = int(raw[raw.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    seen, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, []))
    return sorted(seen)


def _kill_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the given processes and their descendants."""
    pids = [p for p in _with_descendants(pids) if p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            if not pids:
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):  # reap our own children
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return _proc_stat(pid) is not None


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"  <{path}: {exc}>"
    return "\n".join("  " + line for line in lines[-n:]) or "  <empty>"


def _node_resources() -> tuple[int, int]:
    cpus = len(os.sched_getaffinity(0)) or os.cpu_count() or 1
    mem_kb = 1024 * 1024
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return cpus, max(512, int(mem_kb / 1024 * 0.9))


def _restore_conf() -> None:
    """Put the pre-test slurm.conf back (or remove ours if there was none)."""
    if SLURM_CONF_BACKUP.exists():
        os.replace(SLURM_CONF_BACKUP, SLURM_CONF)
    elif SLURM_CONF.exists() and SLURM_CONF.read_text().startswith(CONF_MARKER):
        SLURM_CONF.unlink()


def cleanup_stale() -> None:
    """Stop daemons and restore slurm.conf left by a run that was killed."""
    if STATE_FILE.exists():
        try:
            state = json.loads(STATE_FILE.read_text())
        except (OSError, ValueError):
            state = {}
        victims = []
        for pid, start in state.get("pids", {}).items():
            st = _proc_stat(int(pid))
            if st and st[2] == start and st[0] in _DAEMON_NAMES:
                victims.append(int(pid))
        victims += _pids_in_sessions(set(state.get("sids", [])))
        if state.get("run_dir"):
            victims += _stepds_in(state["run_dir"])
        _kill_pids(sorted(set(victims)))
        if state.get("run_dir"):
            shutil.rmtree(state["run_dir"], ignore_errors=True)
        STATE_FILE.unlink(missing_ok=True)
    _restore_conf()


def _render_conf(c: dict) -> str:
    return f"""{CONF_MARKER}
# Throw-away single-node test cluster; restored/removed on teardown.
ClusterName=benchpp
SlurmctldHost={c['ctl_host']}(127.0.0.1)
SlurmctldPort={c['ctld_port']}
SlurmdPort={c['slurmd_port']}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={c['munge_socket']}
StateSaveLocation={c['state_dir']}
SlurmdSpoolDir={c['spool_dir']}
SlurmctldPidFile={c['run_dir']}/slurmctld.pid
SlurmdPidFile={c['run_dir']}/slurmd.pid
SlurmctldLogFile={c['slurmctld_log']}
SlurmdLogFile={c['slurmd_log']}
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# no cgroups in this sandbox
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
# srun inside batch jobs (slurm-jobstep executor) must work
LaunchType=launch/slurm
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
# no slurmdbd: sacct does not work, status via squeue (MinJobAge >= 120 s)
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={c['jobcomp_log']}
MinJobAge=300
ReturnToService=2
InactiveLimit=0
KillWait=5
SlurmdTimeout=300
SlurmdParameters=config_overrides
# without a default, a job without --mem takes the whole node
DefMemPerCPU={c['def_mem']}
NodeName={NODE} NodeAddr=127.0.0.1 NodeHostname={NODE} CPUs={c['cpus']} RealMemory={c['mem']} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


# --------------------------------------------------------------------------


@contextlib.contextmanager
def slurm_cluster(
    workdir: Path, start_timeout: float = 60.0, lock_timeout: float = 600.0
) -> Iterator[SlurmCluster]:
    """Start a single-node SLURM cluster on localhost; yield a :class:`SlurmCluster`.

    ``workdir`` (created if needed) receives ``state/``, ``log/`` and
    ``jobcomp.txt``; unix sockets (munge, slurmd spool) live in a short
    ``/tmp/bppslurm-*`` directory that is removed on exit.  The node has the
    machine's CPUs and 90 % of its memory; partition ``debug`` is the default.

    Jobs may be submitted with plain ``sbatch``/``srun`` (environment:
    ``cluster.env``) or via Snakemake's SLURM executor with
    ``cluster.snakemake_args()`` added.  Raises :class:`SlurmClusterError`
    (with daemon log tails) if the node is not idle within ``start_timeout``
    seconds.  Needs root.  Only one cluster per machine at a time: a second
    caller waits up to ``lock_timeout`` seconds for the first to finish.
    """
    if os.geteuid() != 0:
        raise SlurmClusterError("slurm_cluster() must run as root")
    for tool in ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue"):
        if shutil.which(tool) is None:
            raise SlurmClusterError(
                f"{tool} not found; run scripts/install_slurm.sh (as root)"
            )
    with _machine_lock(lock_timeout):
        cleanup_stale()  # safe: we hold the lock, so any state is stale
        with _cluster(Path(workdir).resolve(), start_timeout) as cluster:
            yield cluster


@contextlib.contextmanager
def _machine_lock(timeout: float) -> Iterator[None]:
    """One test cluster per machine: flock, released even if we get killed."""
    with open(LOCK_FILE, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SlurmClusterError(
                        f"another SLURM test cluster holds {LOCK_FILE} "
                        f"(waited {timeout:.0f}s)") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _cluster(workdir: Path, start_timeout: float) -> Iterator[SlurmCluster]:
    state_dir, log_dir = workdir / "state", workdir / "log"
    for d in (state_dir, log_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    jobcomp_log = workdir / "jobcomp.txt"
    jobcomp_log.unlink(missing_ok=True)
    # short path: unix socket names are limited to 107 bytes
    run_dir = Path(tempfile.mkdtemp(prefix="bppslurm-", dir="/tmp"))
    run_dir.chmod(0o755)
    spool_dir = run_dir / "spool"

    cpus, mem = _node_resources()
    conf = {
        "ctl_host": socket.gethostname().split(".")[0],
        "ctld_port": _free_port(),
        "slurmd_port": _free_port(),
        "munge_socket": run_dir / "munge.socket",
        "state_dir": state_dir,
        "spool_dir": spool_dir,
        "run_dir": run_dir,
        "slurmctld_log": log_dir / "slurmctld.log",
        "slurmd_log": log_dir / "slurmd.log",
        "jobcomp_log": jobcomp_log,
        "cpus": cpus,
        "mem": mem,
        "def_mem": min(1024, mem // cpus),
    }
    while conf["slurmd_port"] == conf["ctld_port"]:
        conf["slurmd_port"] = _free_port()

    env = _clean_env()
    procs: dict[str, subprocess.Popen] = {}
    state = {"pids": {}, "sids": [], "run_dir": str(run_dir)}

    def save_state() -> None:
        for p in procs.values():
            st = _proc_stat(p.pid)
            if st:
                state["pids"][str(p.pid)] = st[2]
                if p.pid not in state["sids"]:
                    state["sids"].append(p.pid)
        STATE_FILE.write_text(json.dumps(state))

    def start(name: str, argv: list[str]) -> None:
        with open(log_dir / f"{name}.stdout", "wb") as out:
            procs[name] = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, start_new_session=True, cwd=run_dir,
            )
        save_state()

    def diagnostics(msg: str) -> str:
        parts = [msg]
        for name in ("munged", "slurmctld", "slurmd"):
            p = procs.get(name)
            status = "not started" if p is None else (
                "running" if p.poll() is None else f"exited {p.returncode}")
            parts.append(f"--- {name} ({status})")
            for log, n in ((log_dir / f"{name}.log", 25),
                           (log_dir / f"{name}.stdout", 10)):
                if log.exists() and log.stat().st_size:
                    parts.append(f"  {log}:\n{_tail(log, n)}")
        return "\n".join(parts)

    conf_written = False
    try:
        spool_dir.mkdir()
        # ---- munge (private key, socket and files)
        key = run_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        start("munged", [
            "munged", "--foreground", "--force",
            f"--socket={conf['munge_socket']}", f"--key-file={key}",
            f"--pid-file={run_dir / 'munged.pid'}",
            f"--log-file={log_dir / 'munged.log'}",
            f"--seed-file={run_dir / 'munged.seed'}",
        ])
        deadline = time.monotonic() + 15
        while not conf["munge_socket"].exists():
            if procs["munged"].poll() is not None or time.monotonic() > deadline:
                raise SlurmClusterError(diagnostics("munged did not start"))
            time.sleep(0.1)

        # ---- slurm.conf at the default path
        if SLURM_CONF.exists() and not SLURM_CONF_BACKUP.exists():
            shutil.copy2(SLURM_CONF, SLURM_CONF_BACKUP)
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        conf_written = True
        tmp = SLURM_CONF.with_suffix(".conf.tmp")
        tmp.write_text(_render_conf(conf))
        tmp.chmod(0o644)
        os.replace(tmp, SLURM_CONF)

        # ---- daemons, in the foreground, as our children
        start("slurmctld", ["slurmctld", "-D", "-c", "-i", "-f", str(SLURM_CONF)])
        start("slurmd", ["slurmd", "-D", "-N", NODE, "-f", str(SLURM_CONF)])

        # ---- wait for the node to be idle
        deadline = time.monotonic() + start_timeout
        last = ""
        while True:
            for name, p in procs.items():
                if p.poll() is not None:
                    raise SlurmClusterError(diagnostics(f"{name} exited early"))
            r = subprocess.run(
                ["sinfo", "-h", "-N", "-p", PARTITION, "-o", "%N %t"],
                env=env, capture_output=True, text=True, timeout=15,
            )
            last = (r.stdout + r.stderr).strip()
            if r.returncode == 0 and re.search(rf"^{NODE} idle$", last, re.M):
                break
            if time.monotonic() > deadline:
                raise SlurmClusterError(diagnostics(
                    f"node {NODE} not idle after {start_timeout:.0f}s; "
                    f"last sinfo: {last!r}"))
            time.sleep(0.5)

        yield SlurmCluster(
            partition=PARTITION, node=NODE, cpus=cpus, real_memory_mb=mem,
            def_mem_per_cpu_mb=conf["def_mem"], workdir=workdir,
            conf_path=SLURM_CONF, env=env,
            slurmctld_log=conf["slurmctld_log"], slurmd_log=conf["slurmd_log"],
            jobcomp_log=jobcomp_log,
        )
    finally:
        _teardown(procs, env, conf_written, run_dir)


def _teardown(procs, env, conf_written, run_dir) -> None:
    ctld, slurmd = procs.get("slurmctld"), procs.get("slurmd")
    if ctld and ctld.poll() is None and slurmd and slurmd.poll() is None:
        # cancel everything and give the steps a moment to finish cleanly
        with contextlib.suppress(Exception):
            subprocess.run(["scancel", "--full", "-p", PARTITION], env=env,
                           capture_output=True, timeout=10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = subprocess.run(["squeue", "-h", "-t", "PD,R,CG,S", "-o", "%i"],
                                   env=env, capture_output=True, text=True,
                                   timeout=10)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.3)
    sids = {p.pid for p in procs.values()}
    for name in ("slurmd", "slurmctld", "munged"):
        p = procs.get(name)
        if p is None:
            continue
        if name == "slurmd":
            _kill_pids([p.pid])
            # slurmstepd daemonize into their own sessions; cwd is run_dir
            _kill_pids(_stepds_in(str(run_dir)))
        else:
            _kill_pids([p.pid])
        with contextlib.suppress(Exception):
            p.wait(timeout=5)
    _kill_pids(_pids_in_sessions(sids))  # anything else we spawned
    if conf_written:
        _restore_conf()
    shutil.rmtree(run_dir, ignore_errors=True)
    STATE_FILE.unlink(missing_ok=True)
