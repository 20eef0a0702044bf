"""Small builders shared by tests."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench_powerprop.config import Cell, cell_spec, load_yaml

REPO = Path(__file__).resolve().parent.parent


def digits_spec(method="dense", alpha=2.0, sparsity=0.0, seed=0, steps=60, **train_overrides):
    config = load_yaml(REPO / "configs" / "default.yaml")
    spec = copy.deepcopy(cell_spec(config, Cell("oneshot_digits", method, alpha, sparsity, seed)))
    spec["train"].update({"steps": steps, "log_every": 10, "eval_every": 20, "checkpoint_every": 20, **train_overrides})
    return spec


def train_command(spec, run_dir, checkpoint_dir):
    return [sys.executable, "-m", "bench_powerprop", "train", "--spec", json.dumps(spec),
            "--run-dir", str(run_dir), "--checkpoint-dir", str(checkpoint_dir), "--no-progress"]


def start_training(spec, run_dir, checkpoint_dir):
    return subprocess.Popen(train_command(spec, run_dir, checkpoint_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(checkpoint_dir: Path, process, timeout=120.0, min_count=1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(Path(checkpoint_dir).glob("step_*.pt.sha256"))) >= min_count:
            return
        if process.poll() is not None:
            raise AssertionError(f"training exited ({process.returncode}) before a checkpoint: {process.stdout.read() if process.stdout else ''}")
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared in time")


def kill_hard(process):
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
