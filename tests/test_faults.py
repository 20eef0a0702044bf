"""Fault injection: killed, preempted and corrupted jobs lose no results and change none."""

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench_powerprop.training.progress import LIVE_LOG_NAME

from conftest import REPO, SNAKEMAKE
from helpers import cell_run_dir, digits_spec, kill_hard, start_training, train_command, wait_for_checkpoint, wait_for_logged_step

pytestmark = [pytest.mark.faults, pytest.mark.timeout(400)]

FAULTS = str(REPO / "tests" / "configs" / "faults.yaml")
CELL = cell_run_dir([FAULTS], "oneshot_digits", method="dense", alpha=2, sparsity=0, seed=1).removeprefix("results/")
COMPARED = ["val_accuracy", "test_accuracy", "final_loss", "steps", "diverged", "spec_hash", "actual_sparsity", "zero_fraction"]


def snakemake_command(workdir, *targets):
    return [*SNAKEMAKE, *targets, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "-c2", "--configfile", FAULTS]


def same_metrics(path_a, path_b):
    a, b = json.loads(Path(path_a).read_text()), json.loads(Path(path_b).read_text())
    return {key: (a[key], b[key]) for key in COMPARED if a[key] != b[key]}


def training_pid(cell: str) -> int:
    """PID of the `bench_powerprop train` process of ``cell`` (its --checkpoint-dir ends with it)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"train" in command and any(arg.endswith(cell.encode()) for arg in command):
                return int(entry.name)
    raise AssertionError(f"no training process for {cell}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted grid (the results every faulty run must reproduce bitwise)."""
    workdir = tmp_path_factory.mktemp("reference")
    (workdir / "configs").symlink_to(REPO / "configs")
    subprocess.run(snakemake_command(workdir), check=True, capture_output=True, timeout=300)
    return workdir / "results"


def fresh_workdir(tmp_path):
    (tmp_path / "configs").symlink_to(REPO / "configs")
    return tmp_path


def test_kill_9_training_job_then_rerun(reference, tmp_path):
    workdir = fresh_workdir(tmp_path)
    target = f"results/{CELL}/metrics.json"
    run = subprocess.Popen(snakemake_command(workdir, target), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = workdir / "checkpoints" / CELL
    wait_for_checkpoint(checkpoints, run, min_count=1)
    newest = checkpoint_steps(checkpoints)[-1]
    # killed between two checkpoints: after a logged step past the newest one (the rerun must redo steps)
    wait_for_logged_step(workdir / "results" / CELL / LIVE_LOG_NAME, run, past=newest)
    os.kill(training_pid(CELL), signal.SIGKILL)
    assert run.wait(timeout=120) != 0
    assert not (workdir / target).exists()

    rerun = subprocess.run(snakemake_command(workdir, target), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (workdir / "results" / f"{CELL.replace('/runs/', '/logs/train/')}.log").read_text()
    assert "resumed from checkpoint" in log
    assert same_metrics(workdir / target, reference / CELL / "metrics.json") == {}


def train_reference(spec, tmp_path) -> Path:
    reference = tmp_path / "reference"
    subprocess.run(train_command(spec, reference, tmp_path / "reference_ckpt"), check=True, capture_output=True)
    return reference / "metrics.json"


def rerun_training(spec, tmp_path) -> str:
    """Run the same cell again on the same checkpoint directory; returns its log."""
    rerun = subprocess.run(train_command(spec, tmp_path / "run", tmp_path / "ckpt"), capture_output=True, text=True, check=True)
    return rerun.stderr


def checkpoint_steps(directory: Path) -> list[int]:
    return sorted(int(path.name[len("step_"):-len(".pt")]) for path in directory.glob("step_*.pt"))


def test_sigterm_checkpoints_exits_nonzero_and_resumes(tmp_path):
    spec = digits_spec(steps=1500, checkpoint_every=400)
    reference = train_reference(spec, tmp_path)
    process = start_training(spec, tmp_path / "run", tmp_path / "ckpt")
    wait_for_checkpoint(tmp_path / "ckpt", process, min_count=1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert "received signal SIGTERM" in process.stdout.read()
    newest = checkpoint_steps(tmp_path / "ckpt")[-1]

    assert f"resumed from checkpoint at step {newest}" in rerun_training(spec, tmp_path)
    assert same_metrics(tmp_path / "run" / "metrics.json", reference) == {}


def test_truncated_newest_checkpoint_falls_back(tmp_path):
    spec = digits_spec(steps=1500, checkpoint_every=100)
    reference = train_reference(spec, tmp_path)
    process = start_training(spec, tmp_path / "run", tmp_path / "ckpt")
    wait_for_checkpoint(tmp_path / "ckpt", process, min_count=2)
    kill_hard(process)
    *_, previous, newest = checkpoint_steps(tmp_path / "ckpt")
    newest_file = tmp_path / "ckpt" / f"step_{newest:08d}.pt"
    newest_file.write_bytes(newest_file.read_bytes()[: newest_file.stat().st_size // 2])

    log = rerun_training(spec, tmp_path)
    assert "failed its checksum" in log
    assert f"resumed from checkpoint at step {previous}" in log
    assert same_metrics(tmp_path / "run" / "metrics.json", reference) == {}


def _digest(path: Path) -> tuple[float, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def finished_train_outputs(log_text: str, workdir: Path) -> set[Path]:
    """metrics.json of the train jobs Snakemake has reported finished in its log."""
    outputs = {
        jobid: metrics
        for metrics, jobid in re.findall(
            r"rule train:\n\s+output: (\S+/metrics\.json)[^\n]*\n(?:\s+\w+: [^\n]*\n)*?\s+jobid: (\d+)", log_text)
    }
    done = re.findall(r"Finished jobid: (\d+) \(Rule: train\)", log_text)
    return {workdir / outputs[jobid] for jobid in done}


def training_jobs_running(workdir: Path) -> list[Path]:
    """Run directories of the grid's cells whose training has logged a step and not yet written metrics.json."""
    return [live.parent for live in (workdir / "results").glob(f"oneshot_digits/runs/**/{LIVE_LOG_NAME}")
            if not (live.parent / "metrics.json").exists()]


def test_kill_snakemake_mid_grid_then_rerun_incomplete(reference, tmp_path):
    workdir = fresh_workdir(tmp_path)
    log_path = tmp_path / "snakemake.log"
    with open(log_path, "w") as log:
        run = subprocess.Popen(snakemake_command(workdir), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 240
        while not (finished_train_outputs(log_path.read_text(), workdir) and training_jobs_running(workdir)):
            assert time.monotonic() < deadline and run.poll() is None, "no partial grid: a train job done, another running"
            time.sleep(0.05)
        # frozen first, so the grid is seen as it is killed: some train jobs done, some not
        os.killpg(run.pid, signal.SIGSTOP)
        finished = {path: _digest(path) for path in finished_train_outputs(log_path.read_text(), workdir)}
        unfinished = [cell for cell in training_jobs_running(workdir) if cell / "metrics.json" not in finished]
        os.killpg(run.pid, signal.SIGKILL)  # snakemake and every job it started, like a lost login node
        run.wait(timeout=30)
    assert finished and unfinished

    subprocess.run([*snakemake_command(workdir), "--unlock"], check=True, capture_output=True)
    rerun = subprocess.run([*snakemake_command(workdir), "--rerun-incomplete"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for path, digest in finished.items():
        assert _digest(path) == digest, f"{path} was recomputed"
    results = workdir / "results"
    for metrics in results.glob("oneshot_digits/runs/**/metrics.json"):
        assert same_metrics(metrics, reference / metrics.relative_to(results)) == {}
    assert (results / "oneshot_digits/tables/oneshot_runs.csv").read_text() == \
        (reference / "oneshot_digits/tables/oneshot_runs.csv").read_text()
