"""Small builders shared by tests."""

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench_powerprop.cells import make_cell
from bench_powerprop.config import load_configs, load_yaml
from bench_powerprop.plan import Plan

REPO = Path(__file__).resolve().parent.parent


def digits_config(method="dense", alpha=2.0, sparsity=0.0, seed=0, steps=60, options=None, **train_overrides) -> dict:
    """configs/default.yaml reduced to one digits cell of ``oneshot_digits`` with the given settings."""
    config = load_yaml(REPO / "configs" / "default.yaml")
    config["active_experiments"] = ["oneshot_digits"]
    experiment = config["experiments"]["oneshot_digits"]
    experiment["grid"] = [{"method": [method], "alpha": [alpha], "sparsity": [sparsity], "seed": [seed]}]
    experiment["methods"] = {method: dict(options or {})}
    experiment["train"].update({"steps": steps, "log_every": 10, "eval_every": 20, "checkpoint_every": 20, **train_overrides})
    return config


def cell_run_dir(configfiles, experiment: str, **axes) -> str:
    """A cell's run folder (``…/seed~0/h~<spec hash>``, relative to the workdir) under configs/default.yaml and
    ``configfiles`` merged as the workflow merges them (``plan.run_dir``: tests never spell a spec hash)."""
    config = load_configs([REPO / "configs" / "default.yaml", *configfiles])
    return Plan(config).run_dir(make_cell(experiment, **axes))


def digits_spec(method="dense", alpha=2.0, sparsity=0.0, seed=0, steps=60, options=None, **train_overrides) -> dict:
    """The training spec the workflow would give that cell (every default filled in)."""
    config = digits_config(method, alpha, sparsity, seed, steps, options, **train_overrides)
    cell = make_cell("oneshot_digits", method=method, alpha=alpha, sparsity=sparsity, seed=seed)
    return copy.deepcopy(Plan(config).spec(cell))


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
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"training exited ({process.returncode}) before a checkpoint: {output}")
        time.sleep(0.005)
    raise AssertionError("no checkpoint appeared in time")


def logged_steps(live_log: Path) -> list[int]:
    """Steps of the complete rows of a training job's ``train_log.live.csv`` so far (a row still being written is
    left out)."""
    if not Path(live_log).exists():
        return []
    lines = Path(live_log).read_text().splitlines(keepends=True)[1:]
    return [int(line.split(",", 1)[0]) for line in lines if line.endswith("\n")]


def wait_for_logged_step(live_log: Path, process, past: int, timeout=120.0) -> int:
    """Wait until the job has logged a step after ``past``; returns the newest logged step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = logged_steps(live_log)
        if steps and steps[-1] > past:
            return steps[-1]
        if process.poll() is not None:
            raise AssertionError(f"training exited ({process.returncode}) before logging a step after {past}")
        time.sleep(0.005)
    raise AssertionError(f"no step after {past} logged in time")


def kill_hard(process):
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def continual_spec(method="packnet", alpha=2.0, seed=0, tasks=3, steps=30, options=None, hidden=(32, 16), **train_overrides) -> dict:
    """The training spec of one cell learning ``tasks`` permuted-digits tasks (``steps`` per task) on a small MLP."""
    config = digits_config(method, alpha, 0.0, seed, steps, options, **train_overrides)
    experiment = config["experiments"]["oneshot_digits"]
    experiment["data"] = {"name": "permuted", "base": {"name": "digits"}, "tasks": tasks}
    experiment["model"] = {"name": "mlp", "hidden": list(hidden)}
    cell = make_cell("oneshot_digits", method=method, alpha=alpha, sparsity=0.0, seed=seed)
    return copy.deepcopy(Plan(config).spec(cell))


def run_folder(axes_dir) -> Path:
    """The one run folder below a cell's axes path (``…/seed~0`` → ``…/seed~0/h~<spec hash>``) of a workdir that
    trained one spec of the cell."""
    found = sorted(Path(axes_dir).glob("h~*"))
    assert len(found) == 1, f"{axes_dir}: {len(found)} run folders"
    return found[0]
