"""The pre-warmed training server: a cell trained through it is the cell trained in its own process, bit for bit,
and the job keeps its exit status, preemption, death and lock."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench_powerprop.training import server

from helpers import digits_spec, train_command, wait_for_checkpoint

pytestmark = pytest.mark.timeout(300)

#: what differs between two runs of one cell by design (wall time)
TIMING = ("train_seconds_this_process",)


@pytest.fixture(scope="module")
def running_server(tmp_path_factory):
    started = server.start(tmp_path_factory.mktemp("server") / "server.log")
    assert started is not None
    yield os.environ[server.SOCKET_VARIABLE]
    server.stop(started)


def job_environment(socket_path: str | None) -> dict:
    """A training job's environment as Snakemake gives it (threads: 1), with or without the server's socket."""
    environment = {name: value for name, value in os.environ.items() if name != server.SOCKET_VARIABLE}
    return {**environment, **server.ONE_THREAD_ENVIRONMENT, **({server.SOCKET_VARIABLE: socket_path} if socket_path else {})}


def train(spec, directory: Path, socket_path: str | None) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(spec, directory / "run", directory / "ckpt"), capture_output=True, text=True,
                          env=job_environment(socket_path), timeout=240)


def start(spec, directory: Path, socket_path: str | None) -> subprocess.Popen:
    return subprocess.Popen(train_command(spec, directory / "run", directory / "ckpt"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=job_environment(socket_path))


def lock_holder(directory: Path) -> int:
    """The pid the cell lock recorded: the process that trained (a worker's pid is not its client's)."""
    return int((directory / "ckpt" / "train.lock").read_text())


def metrics_without(directory: Path, ignored: tuple[str, ...]) -> dict:
    """metrics.json less the ignored keys, the outputs' modification times and run.json's fingerprint (provenance:
    paths and start time; compared apart)."""
    metrics = json.loads((directory / "run" / "metrics.json").read_text())
    outputs = {name: {key: value for key, value in facts.items() if key != "mtime_ns"}
               for name, facts in metrics.get("outputs", {}).items() if name != "run.json"}
    return {**{key: value for key, value in metrics.items() if key not in ignored}, "outputs": outputs}


def assert_same_cell(a: Path, b: Path, ignored: tuple[str, ...] = TIMING) -> None:
    """Same metrics (the sizes of every output included: run directories of equal name length), same files."""
    assert metrics_without(a, ignored) == metrics_without(b, ignored)
    run_a, run_b = (json.loads((directory / "run" / "run.json").read_text()) for directory in (a, b))
    assert run_a["command"][0] == run_b["command"][0] and run_a["spec"] == run_b["spec"]
    for name in ("model.pt", "train_log.csv", "gradient_norms.csv", "snapshots/index.json"):
        assert (a / "run" / name).read_bytes() == (b / "run" / name).read_bytes(), name


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("method, sparsity", [("dense", 0.0), ("rigl", 0.9)])
def test_a_cell_trained_through_the_server_is_bitwise_the_cell_trained_in_its_own_process(running_server, tmp_path,
                                                                                          method, sparsity):
    spec = digits_spec(method=method, sparsity=sparsity, steps=120)
    own, served = train(spec, tmp_path / "own", None), train(spec, tmp_path / "srv", running_server)
    assert own.returncode == 0 and served.returncode == 0, own.stderr[-2000:] + served.stderr[-2000:]
    assert served.stdout == own.stdout and "test accuracy" in served.stdout  # the job's own stdout, through its fd
    assert "training in this process" not in served.stderr
    assert_same_cell(tmp_path / "own", tmp_path / "srv")


def test_sigterm_to_the_client_checkpoints_in_the_worker_exits_143_and_resumes_bitwise(running_server, tmp_path):
    spec = digits_spec(steps=1500, checkpoint_every=400)
    assert train(spec, tmp_path / "ref", None).returncode == 0
    process = start(spec, tmp_path / "srv", running_server)
    wait_for_checkpoint(tmp_path / "srv" / "ckpt", process, min_count=1)
    assert lock_holder(tmp_path / "srv") != process.pid  # it trains in a worker
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert "received signal SIGTERM" in process.stdout.read()

    resumed = train(spec, tmp_path / "srv", running_server)
    assert resumed.returncode == 0 and "resumed from checkpoint" in resumed.stderr
    assert_same_cell(tmp_path / "ref", tmp_path / "srv", (*TIMING, "resumed_from_step"))


def test_kill_9_of_the_client_kills_its_worker_and_frees_the_cell(running_server, tmp_path):
    spec = digits_spec(steps=30000, checkpoint_every=100)
    process = start(spec, tmp_path / "srv", running_server)
    wait_for_checkpoint(tmp_path / "srv" / "ckpt", process)
    worker = lock_holder(tmp_path / "srv")
    assert worker != process.pid and alive(worker)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(worker)
    short = digits_spec(steps=20)  # another spec on the same checkpoint directory: the lock is free again
    assert train(short, tmp_path / "srv", running_server).returncode == 0


def test_a_failing_job_keeps_its_exit_status_and_message(running_server, tmp_path):
    bad = {**digits_spec(), "method": "no_such_method"}
    own, served = train(bad, tmp_path / "own", None), train(bad, tmp_path / "srv", running_server)
    assert own.returncode == served.returncode == 2
    assert served.stderr == own.stderr and "spec.method: unknown method 'no_such_method'" in served.stderr


def test_without_a_usable_server_the_job_trains_in_its_own_process(running_server, tmp_path):
    spec = digits_spec(steps=20)
    missing = train(spec, tmp_path / "missng", str(tmp_path / "no.sock"))
    assert missing.returncode == 0 and "training in this process" in missing.stderr
    # thread counts come from the spec now (bench_powerprop.numerics); another import-time variable still differs
    other_openmp = subprocess.run(train_command(spec, tmp_path / "refusd" / "run", tmp_path / "refusd" / "ckpt"),
                                  capture_output=True, text=True, timeout=240,
                                  env={**job_environment(running_server), "OMP_WAIT_POLICY": "PASSIVE"})
    assert other_openmp.returncode == 0
    assert "refused this job (the client's environment differs in OMP_WAIT_POLICY)" in other_openmp.stderr
    assert_same_cell(tmp_path / "missng", tmp_path / "refusd")


def test_a_job_of_another_numerics_mode_trains_in_its_own_process_under_its_mode(running_server, tmp_path):
    """The server imported torch under portable numerics; a native cell's kernels must be chosen afresh."""
    spec = digits_spec(steps=20)
    native = {**spec, "train": {**spec["train"], "numerics": "native"}}
    served = train(spec, tmp_path / "portable", running_server)
    own = train(native, tmp_path / "native", running_server)
    assert served.returncode == own.returncode == 0 and "refused" not in served.stderr
    assert "refused this job" in own.stderr and "ATEN_CPU_CAPABILITY" in own.stderr
    portable_run, native_run = (json.loads((tmp_path / name / "run" / "run.json").read_text())["hardware"]
                                for name in ("portable", "native"))
    assert portable_run["numerics"] == "portable" and portable_run["environment"]["MKL_CBWR"] == "COMPATIBLE"
    assert native_run["numerics"] == "native" and "MKL_CBWR" not in native_run["environment"]
    assert portable_run["capability"] == "AVX2" or portable_run["capability"] == "DEFAULT"


def test_the_socket_directory_is_private(running_server):
    assert Path(running_server).parent.stat().st_mode & 0o777 == 0o700


def test_a_pruning_sweep_through_the_server_is_bitwise_the_sweep_in_its_own_process(running_server, tmp_path):
    trained = train(digits_spec(steps=40), tmp_path / "cell", None)
    assert trained.returncode == 0, trained.stderr[-2000:]
    prune = json.dumps({"keep_levels": [0.05, 0.2, 1.0], "scope": "layerwise", "last_layer_keep_factor": 2.0})

    def sweep(out: Path, socket_path: str | None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "bench_powerprop", "prune-eval", "--model", str(tmp_path / "cell" / "run" / "model.pt"),
                   "--prune", prune, "--out", str(out)]
        return subprocess.run(command, capture_output=True, text=True, env=job_environment(socket_path), timeout=240)

    own, served = sweep(tmp_path / "own.csv", None), sweep(tmp_path / "served.csv", running_server)
    assert own.returncode == 0 and served.returncode == 0, own.stderr[-2000:] + served.stderr[-2000:]
    assert "training server" not in served.stderr and served.stdout == own.stdout
    assert (tmp_path / "served.csv").read_bytes() == (tmp_path / "own.csv").read_bytes()
