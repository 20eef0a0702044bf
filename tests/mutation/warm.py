"""A pre-warmed pytest for mutation runs: one process imports torch and the other heavy libraries once, and
every mutant's test run is a fork of it (what the training server does for training jobs).

Importing torch takes seconds per process, more than the tests of a module; a fork takes milliseconds. The
server never imports ``bench_powerprop``: each forked child imports the package from disk, so it sees the
file cosmic-ray has just mutated.

    python tests/mutation/warm.py serve SOCKET TIMEOUT    # started by mutate.py in the scratch copy
    python tests/mutation/warm.py run SOCKET -- ARGS...   # cosmic-ray's test command: pytest ARGS in a fork
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

HEAVY = ("torch", "numpy", "scipy.stats", "pandas", "matplotlib.pyplot", "yaml", "pytest")


def serve(path: str, timeout: int) -> None:
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for name in HEAVY:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        request = json.loads(connection.makefile().readline())
        pid = os.fork()
        if pid == 0:
            server.close()
            run_child(connection, request, timeout)
        connection.close()
        reap()


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_child(connection: socket.socket, request: dict, timeout: int) -> None:
    """In the fork: pytest ``request['args']`` with output to the client's socket; its exit code last."""
    code = 3
    try:
        os.setsid()
        os.chdir(request["cwd"])
        sys.path.insert(0, request["cwd"])
        stream = connection.makefile("w", buffering=1)
        os.dup2(stream.fileno(), 1)
        os.dup2(stream.fileno(), 2)
        signal.alarm(timeout)  # a mutant that loops forever: cosmic-ray's timeout ends the client, this the fork
        import pytest

        code = int(pytest.main(request["args"]))
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        try:
            connection.sendall(f"\n@@exit {code}\n".encode())
        finally:
            os._exit(code)


def run(path: str, args: list[str]) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall((json.dumps({"cwd": os.getcwd(), "args": args}) + "\n").encode())
    code = 3
    for line in client.makefile(errors="replace"):
        if line.startswith("@@exit "):
            code = int(line.split()[1])
        else:
            sys.stdout.write(line)
    return code


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "serve":
        serve(argv[1], int(argv[2]))
        return 0
    if len(argv) >= 3 and argv[0] == "run" and argv[2] == "--":
        return run(argv[1], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
