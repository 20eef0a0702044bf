"""Live training curves: train_log.live.csv while a cell trains, TensorBoard event files with train.tensorboard.

A job killed after its last checkpoint leaves its curve; the resumed job drops the rows logged
after that checkpoint, and its final train_log.csv is byte-identical to an uninterrupted run's.
TensorBoard reads back exactly train_log.csv's numbers (as float32, TensorBoard's scalar type).
"""

import csv
import math

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

from bench_powerprop.cells import make_cell
from bench_powerprop.training.progress import LIVE_LOG_NAME, TENSORBOARD_TAGS, live_sinks
from bench_powerprop.training.trainer import Trainer, train_cell

from helpers import digits_spec


class KilledAt(Exception):
    pass


class KillAtStep:
    """A sink that stops training (like a kill) once the row of ``step`` was logged."""

    def __init__(self, step):
        self.step = step

    def write(self, rows):
        if rows and rows[-1]["step"] == self.step:
            raise KilledAt(self.step)

    def close(self):
        pass


def log_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def tensorboard_scalars(run_dir):
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def csv_scalars(path):
    """train_log.csv's columns as TensorBoard stores them: (step, float32 value), NaN (no evaluation) left out."""
    scalars = {}
    for row in log_rows(path):
        for column, tag in TENSORBOARD_TAGS.items():
            value = float(row[column])
            if not math.isnan(value):
                scalars.setdefault(tag, []).append((int(row["step"]), float(np.float32(value))))
    return scalars


def test_tensorboard_scalars_equal_train_log(tmp_path):
    spec = digits_spec(steps=60, tensorboard=True)
    train_cell(spec, tmp_path / "run", tmp_path / "ckpt", progress=False)
    expected = csv_scalars(tmp_path / "run" / "train_log.csv")
    assert [step for step, _ in expected["train/loss"]] == [10, 20, 30, 40, 50, 60]
    assert [step for step, _ in expected["val/accuracy"]] == [20, 40, 60]
    assert tensorboard_scalars(tmp_path / "run") == expected
    assert not (tmp_path / "run" / LIVE_LOG_NAME).exists()


def test_without_tensorboard_no_event_files(tmp_path):
    """Not even those of an earlier run of the cell with train.tensorboard: true (its curves, not this run's)."""
    train_cell(digits_spec(steps=20, tensorboard=True), tmp_path / "run", tmp_path / "ckpt_with", progress=False)
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    train_cell(digits_spec(steps=20), tmp_path / "run", tmp_path / "ckpt", progress=False)
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [
        "gradient_norms.csv", "metrics.json", "model.pt", "run.json", "snapshots", "train_log.csv"]


def test_killed_job_leaves_its_curve_and_the_resumed_log_is_the_uninterrupted_one(tmp_path):
    spec = digits_spec(steps=60, checkpoint_every=20, tensorboard=True)
    train_cell(spec, tmp_path / "reference", tmp_path / "reference_ckpt", progress=False)

    killed = Trainer(spec, tmp_path / "ckpt", progress=False)
    with pytest.raises(KilledAt), killed.log.streaming([*live_sinks(tmp_path / "run", tensorboard=True), KillAtStep(30)]):
        killed.run()
    live = tmp_path / "run" / LIVE_LOG_NAME
    assert [row["step"] for row in log_rows(live)] == ["10", "20", "30"]  # the curve so far, flushed
    assert [step for step, _ in tensorboard_scalars(tmp_path / "run")["train/loss"]] == [10, 20, 30]

    resumed = Trainer(spec, tmp_path / "ckpt", progress=False)
    assert resumed.resumed_from == 20
    sinks = live_sinks(tmp_path / "run", tensorboard=True)
    with resumed.log.streaming(sinks):
        # at once, before any new step: step 30 (logged after the checkpoint) is gone from both copies
        assert [row["step"] for row in log_rows(live)] == ["10", "20"]
        assert [step for step, _ in tensorboard_scalars(tmp_path / "run")["train/loss"]] == [10, 20]

    train_cell(spec, tmp_path / "run", tmp_path / "ckpt", progress=False)
    final = (tmp_path / "run" / "train_log.csv").read_bytes()
    assert final == (tmp_path / "reference" / "train_log.csv").read_bytes()
    assert not live.exists()
    assert tensorboard_scalars(tmp_path / "run") == csv_scalars(tmp_path / "run" / "train_log.csv")


def test_tensorboard_names_each_run_by_its_cell(tmp_path):
    """``tensorboard --logdir results/<experiment>`` lists one run per cell, named by the cell's axes."""
    cells = [make_cell("oneshot_digits", method="dense", alpha=alpha, sparsity=0.0, seed=0) for alpha in (1.0, 2.0)]
    for cell in cells:
        spec = digits_spec(alpha=cell.alpha, steps=20, tensorboard=True)
        train_cell(spec, tmp_path / "runs" / cell.path, tmp_path / "ckpt" / cell.path, progress=False)
    runs = EventMultiplexer().AddRunsFromDirectory(str(tmp_path)).Runs()
    assert set(runs) == {f"runs/{cell.path}" for cell in cells}
