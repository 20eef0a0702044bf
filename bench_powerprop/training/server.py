"""A pre-warmed fork server for training jobs (and one-shot pruning sweeps): several cells per process start-up, one cell per job.

A training job's fixed cost on the embedded default (Python start, ``import torch`` and the
package, ~1.5 s) is as large as its training. The workflow's ``onstart`` hook starts one server
per run (``python -m bench_powerprop.training.server --socket PATH``) that imports everything
training imports and then waits on a Unix socket in a private (0700) directory. A training job's
``python -m bench_powerprop train ...`` stays exactly today's command: when
``BENCH_POWERPROP_TRAIN_SOCKET`` names a socket, it is a thin client (``server_client.py``) that does not import torch.
It sends its argv, working directory and environment, and passes its stdin/stdout/stderr
(``SCM_RIGHTS``); the server forks a *manager* that forks the *worker*, which points fds 0–2 at
the client's, takes its cwd and environment and runs the same ``train`` entry in-process.
``python -m bench_powerprop prune-eval ...`` (a trained cell's pruning sweep) is served the same way.

What stays the job's own: its outputs, checkpoints, resume and the cell lock (the worker runs the
unchanged ``train_cell``); its exit status (the manager relays the worker's, a signal death is
re-raised on the client); preemption (SIGTERM/SIGINT/SIGUSR1/SIGHUP to the client are forwarded
to the worker, which checkpoints and exits 128+n as today); and its death (the manager watches
the client's connection: when the client dies, even by ``kill -9``, the worker is killed; a dead
manager kills its worker through ``PR_SET_PDEATHSIG``). A cell's result is unchanged: the worker
starts from a server that only imported modules (no tensor op, no RNG draw), the trainer seeds
as it does in a fresh process, and the server refuses a client whose interpreter, package
sources or import-time environment (thread counts, ``PYTHON*``) differ from its own — that
client, and any client that finds no server, trains in its own process, today's path.

The server exits when the Snakemake process that started it is gone, or on SIGTERM (``onsuccess``
/ ``onerror``). The module is torch-free until the server preloads.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

from bench_powerprop import numerics
from bench_powerprop.cli import main as run_command
from bench_powerprop.training.server_client import PACKAGE, SOCKET_VARIABLE, Lines, identity, server_enabled

#: Thread-count variables Snakemake gives a job with ``threads: 1`` (snakemake/shell.py); the server starts with them.
ONE_THREAD_ENVIRONMENT = dict.fromkeys(("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                        "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"), "1")
PR_SET_PDEATHSIG = 1


# -- what must match ------------------------------------------------------------------------
def mismatch(ours: dict, theirs: dict) -> str | None:
    """The first field on which a client's identity differs from the server's, or None."""
    for key in ("executable", "prefix", "package", "sources"):
        if ours[key] != theirs.get(key):
            return f"the client's {key} differs from the server's"
    names = sorted(set(ours["environment"]) ^ set(theirs["environment"])
                   | {name for name in ours["environment"] if ours["environment"][name] != theirs["environment"].get(name)})
    return f"the client's environment differs in {', '.join(names)}" if names else None


# -- framing ----------------------------------------------------------------------------------
def receive_exactly(connection: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = connection.recv(remaining)
        if not chunk:
            raise ConnectionError("connection closed mid-message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    header, fds, _, _ = socket.recv_fds(connection, 4, 3)
    if len(header) < 4:
        header += receive_exactly(connection, 4 - len(header))
    (size,) = struct.unpack("!I", header)
    return json.loads(receive_exactly(connection, size)), fds


# -- the server -------------------------------------------------------------------------------
def preload() -> None:
    """Import what a training job imports (torch, the trainer, every registry), and nothing runs."""
    import bench_powerprop.data.arrays  # imported lazily by the datasets
    import bench_powerprop.data.idx
    import bench_powerprop.models._initializers
    import bench_powerprop.training.trainer  # noqa: F401
    from bench_powerprop.data.datasets import DATASETS
    from bench_powerprop.methods import METHODS
    from bench_powerprop.models import MODELS
    from bench_powerprop.scoring import SCORERS

    for registry in (METHODS, MODELS, DATASETS, SCORERS):
        for name in registry.names():
            registry.get(name)


def serve(path: Path, parent: int) -> None:
    """Accept clients until the process ``parent`` is gone or SIGTERM arrives; one manager per client."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(128)  # clients that connect while the server still imports wait in this queue
    preload()
    ours = identity()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        while os.getppid() == parent:
            reap_managers()
            if not select.select([listener], [], [], 1.0)[0]:
                continue
            connection, _ = listener.accept()
            try:
                accept_client(connection, listener, ours)
            except (OSError, ValueError) as error:
                print(f"train server: dropped a client ({error})", file=sys.stderr, flush=True)
            finally:
                connection.close()
    finally:
        listener.close()
        path.unlink(missing_ok=True)


def reap_managers() -> None:
    """Wait for the managers that ended (so their and their workers' CPU time is accounted to this process, as
    a job's would be to Snakemake)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def accept_client(connection: socket.socket, listener: socket.socket, ours: dict) -> None:
    connection.settimeout(10.0)
    request, fds = receive_request(connection)
    try:
        reason = mismatch(ours, request["identity"]) if len(fds) == 3 else "expected stdin, stdout and stderr"
        if reason:
            connection.sendall(f"refused {reason}\n".encode())
            return
        if os.fork() == 0:
            listener.close()
            connection.settimeout(None)
            manage(connection, request, fds)
    finally:
        for fd in fds:
            os.close(fd)


def manage(connection: socket.socket, request: dict, fds: list[int]) -> None:
    """The manager: fork the worker, forward signals, relay its exit status; kill it when the client is gone."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    manager = os.getpid()
    worker = os.fork()
    if worker == 0:
        connection.close()
        work(request, fds, manager)
    for fd in fds:
        os.close(fd)
    process = os.pidfd_open(worker)
    lines = Lines(connection)
    print(f"train server: worker {worker}: {' '.join(request['argv'][:1] + request['argv'][3:])}", file=sys.stderr, flush=True)
    try:
        connection.sendall(f"started {worker}\n".encode())
        while True:
            ready = select.select([connection, process], [], [])[0]
            if process in ready:
                _, status = os.waitpid(worker, 0)
                ending = f"killed {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.waitstatus_to_exitcode(status)}"
                connection.sendall(f"{ending}\n".encode())
                break
            received = lines.read()
            if received is None:  # the client is gone (killed, even by SIGKILL): so is its job
                os.kill(worker, signal.SIGKILL)
                os.waitpid(worker, 0)
                break
            for line in received:
                kind, _, value = line.partition(" ")
                if kind == "signal":
                    os.kill(worker, int(value))
    except OSError:
        os.kill(worker, signal.SIGKILL)
    finally:
        os._exit(0)


def work(request: dict, fds: list[int], manager: int) -> None:
    """The worker: become the job (its fds, cwd, environment, argv) and run its command (train or prune-eval)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != manager:
        os._exit(1)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["environment"])
    os.environ.pop(SOCKET_VARIABLE)  # the worker runs the command itself
    tempfile.tempdir = None  # re-read TMPDIR (Snakemake sets it per job) as a fresh process would
    reseed_numpy()
    sys.argv = [str(PACKAGE / "__main__.py"), *request["argv"]]
    os._exit(run_entry(request["argv"]))


def reseed_numpy() -> None:
    """numpy's global generator is not reseeded by fork (``random``'s is): give it fresh entropy as a new process has."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def run_entry(argv: list[str]) -> int:
    """``python -m bench_powerprop <argv>`` in this process; its exit code, as the interpreter would compute it."""
    import traceback

    try:
        code = run_command(argv)
    except SystemExit as ended:
        code = ended.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code or 0


# -- starting and stopping it (the workflow's hooks) -------------------------------------------
def server_environment(mode: str) -> dict[str, str]:
    """This process's environment with one thread and ``mode``'s numerics (what a one-thread job of that mode has)."""
    environment = {**os.environ, **ONE_THREAD_ENVIRONMENT}
    numerics.apply(mode, 1, environment)
    return environment


def start(log_path: str | Path, wait_s: float = 10.0, mode: str = numerics.DEFAULT) -> tuple[int, Path] | None:
    """Start a server for this process's jobs and export its socket to them; (pid, directory), or None when off.

    It imports torch under the numerics ``mode`` (one thread): the jobs of cells in another mode (or with more
    threads) differ in their import-time environment and train in their own process.

    The socket lives in a fresh private directory (``mkdtemp``: mode 0700, owned by this user).
    Returns once the socket is bound (the server then imports while clients queue).
    """
    import subprocess

    if not server_enabled():
        return None
    directory = Path(tempfile.mkdtemp(prefix="bench_powerprop-train-"))
    path, log_path = directory / "train.sock", Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "bench_powerprop.training.server", "--socket", str(path),
                                    "--parent", str(os.getpid())], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   env=server_environment(mode), start_new_session=True)
    deadline = time.monotonic() + wait_s
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if not path.exists():
        process.kill()
        return None
    os.environ[SOCKET_VARIABLE] = str(path)
    return process.pid, directory


def stop(started: tuple[int, Path] | None) -> None:
    """Stop a server ``start`` started (running workers finish with their clients) and remove its directory."""
    if started is None:
        return
    pid, directory = started
    os.environ.pop(SOCKET_VARIABLE, None)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    with contextlib.suppress(ChildProcessError):
        while not os.waitpid(pid, os.WNOHANG)[0] and time.monotonic() < deadline:
            time.sleep(0.01)
    for leftover in directory.glob("*"):
        leftover.unlink(missing_ok=True)
    directory.rmdir()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", type=Path, required=True, help="Unix socket to listen on (its directory should be private)")
    parser.add_argument("--parent", type=int, default=os.getppid(), help="exit when this process is gone (default: the parent)")
    args = parser.parse_args(argv)
    serve(args.socket, args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
