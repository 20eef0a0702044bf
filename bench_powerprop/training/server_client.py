"""The client side of the training server (``training/server.py``): a training job that hands itself to the server.

``python -m bench_powerprop train ...`` (or ``prune-eval``) calls :func:`run_via_server`: when
``BENCH_POWERPROP_TRAIN_SOCKET`` names a socket it sends its argv, working directory, environment
and identity (interpreter, package sources, import-time environment) with its stdin/stdout/stderr,
forwards its preemption signals to the worker and returns the worker's exit status; None when no
server is usable (the job then runs in its own process). Here lives what both sides share: the
socket variable, the identity a worker must match and the message framing. Never imports torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from bench_powerprop import numerics

SOCKET_VARIABLE = "BENCH_POWERPROP_TRAIN_SOCKET"
#: Set to ``off`` (or 0/false/no) to keep every training job in its own process.
SWITCH_VARIABLE = "BENCH_POWERPROP_TRAIN_SERVER"
#: Environment read when torch, numpy and their thread pools load: a client must match the server's.
IMPORT_TIME_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "GOTO_", "NUMEXPR_", "KMP_", "GOMP_", "TORCH", "PYTORCH_",
                        "CUDA_", "CUBLAS_", "PYTHON", "LD_", "MALLOC_", "ATEN_", "ONEDNN_", "DNNL_", "NPY_",
                        numerics.MODE_VARIABLE)
#: Signals a client forwards to its worker (the trainer's preemption signals, and a hang-up).
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP)
PACKAGE = Path(__file__).resolve().parent.parent
HANDSHAKE_TIMEOUT_S = 120.0  # a queued client waits this long for a server that is still importing


# -- what must match ------------------------------------------------------------------------
def source_fingerprint() -> list:
    """(path, size, mtime) of every source file of the package: the code a server imported must be the client's."""
    return sorted([str(path.relative_to(PACKAGE)), stat.st_size, stat.st_mtime_ns]
                  for path in PACKAGE.rglob("*.py") for stat in [path.stat()])


def import_time_environment(environment) -> dict[str, str]:
    return {name: value for name, value in environment.items() if name.startswith(IMPORT_TIME_PREFIXES)}


def identity(environment=None) -> dict:
    """What a worker forked from the server shares with a fresh process only if client and server agree on it."""
    return {"executable": sys.executable, "prefix": sys.prefix, "package": str(PACKAGE), "sources": source_fingerprint(),
            "environment": import_time_environment(os.environ if environment is None else environment)}


# -- framing ----------------------------------------------------------------------------------
def send_message(connection: socket.socket, message: dict, fds: list[int] = ()) -> None:
    payload = json.dumps(message).encode()
    header = struct.pack("!I", len(payload))
    if fds:
        socket.send_fds(connection, [header], list(fds))
    else:
        connection.sendall(header)
    connection.sendall(payload)


class Lines:
    """Newline-terminated text messages on a stream socket."""

    def __init__(self, connection: socket.socket):
        self.connection, self.buffer = connection, b""

    def read(self) -> list[str] | None:
        """The complete lines that arrived (blocks for at least one byte); None when the peer closed."""
        data = self.connection.recv(4096)
        if not data:
            return None
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        return [line.decode() for line in lines]


# -- the client (a training job; never imports torch) --------------------------------------
def server_enabled() -> bool:
    return os.environ.get(SWITCH_VARIABLE, "on").lower() not in ("off", "0", "false", "no")


def run_via_server(argv: list[str]) -> int | None:
    """Run ``python -m bench_powerprop <argv>`` in a worker forked from the server; its exit status.

    None when there is no usable server (no socket, refused, gone before the worker started): the
    caller then trains in its own process.
    """
    path = os.environ.get(SOCKET_VARIABLE)
    if not path or not server_enabled():
        return None
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(HANDSHAKE_TIMEOUT_S)
        connection.connect(path)
        send_message(connection, {"argv": argv, "cwd": os.getcwd(), "environment": dict(os.environ), "identity": identity()},
                     [0, 1, 2])
        lines = Lines(connection)
        reply = None
        while not reply:
            reply = lines.read()
            if reply is None:
                raise ConnectionError("the server closed the connection")
    except OSError as error:
        print(f"bench_powerprop: training server at {path} not usable ({error}); training in this process", file=sys.stderr)
        return None
    kind, _, detail = reply[0].partition(" ")
    if kind != "started":
        print(f"bench_powerprop: training server refused this job ({detail}); training in this process", file=sys.stderr)
        return None
    connection.settimeout(None)
    return relay(connection, lines, reply[1:])


def relay(connection: socket.socket, lines: Lines, pending: list[str]) -> int:
    """Forward this process's preemption signals to the worker until the manager reports how it ended."""

    def forward(signum, frame):
        with contextlib.suppress(OSError):
            connection.sendall(f"signal {signum}\n".encode())

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    while True:
        for line in pending:
            kind, _, value = line.partition(" ")
            if kind == "exit":
                return int(value)
            if kind == "killed":
                die_by(int(value))
        pending = lines.read()
        if pending is None:
            print("bench_powerprop: the training server's worker ended without a status", file=sys.stderr)
            return 1


def die_by(signum: int) -> None:
    """End this process by the signal that ended the worker, as the shell would have seen it in-process."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)
