"""Trainer: determinism, exact resume after a hard kill, divergence flagging, data splits."""

import gzip
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from bench_powerprop.data.arrays import load_mnist, read_idx
from bench_powerprop.data.tasks import build_task
from bench_powerprop.training.trainer import Trainer, train_cell

from helpers import digits_spec, kill_hard, start_training, train_command, wait_for_checkpoint

SAME_METRICS = ["val_accuracy", "test_accuracy", "final_loss", "steps", "diverged", "spec_hash"]


def test_training_learns_digits(tmp_path):
    metrics = train_cell(digits_spec(steps=400, alpha=1.0), tmp_path / "run", tmp_path / "ckpt", progress=False)
    assert metrics["test_accuracy"] > 0.9
    assert not metrics["diverged"]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["spec_hash"] == metrics["spec_hash"]
    assert {"git_commit", "versions", "host", "slurm"} <= info.keys()
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert list(log["step"]) == list(range(10, 401, 10))


def test_same_seed_same_result_different_seed_differs(tmp_path):
    first = train_cell(digits_spec(steps=30), tmp_path / "a", tmp_path / "ca", progress=False)
    again = train_cell(digits_spec(steps=30), tmp_path / "b", tmp_path / "cb", progress=False)
    other = train_cell(digits_spec(steps=30, seed=1), tmp_path / "c", tmp_path / "cc", progress=False)
    assert first["final_loss"] == again["final_loss"]
    assert first["final_loss"] != other["final_loss"]


def test_in_process_resume_equals_uninterrupted(tmp_path):
    spec = digits_spec(steps=50)
    uninterrupted = Trainer(spec, tmp_path / "full")
    uninterrupted.run()
    partial = Trainer(spec, tmp_path / "resume")
    while partial.step < 23:
        partial.train_step()
    partial.checkpoint()
    resumed = Trainer(spec, tmp_path / "resume")
    assert resumed.resumed_from == 23
    resumed.run()
    for key, value in uninterrupted.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


@pytest.mark.timeout(300)
def test_hard_kill_then_rerun_equals_uninterrupted(tmp_path):
    import subprocess

    spec = digits_spec(steps=1500, checkpoint_every=100)
    # the reference through the CLI as well: a job sets the spec's numerics mode up before torch is imported, which
    # this test process (torch already imported) cannot
    subprocess.run(train_command(spec, tmp_path / "reference", tmp_path / "reference_ckpt"), capture_output=True, check=True)
    reference = json.loads((tmp_path / "reference" / "metrics.json").read_text())

    process = start_training(spec, tmp_path / "run", tmp_path / "ckpt")
    wait_for_checkpoint(tmp_path / "ckpt", process, min_count=1)
    kill_hard(process)
    assert not (tmp_path / "run" / "metrics.json").exists(), "killed too late: training already finished"

    rerun = subprocess.run(train_command(spec, tmp_path / "run", tmp_path / "ckpt"), capture_output=True, text=True, check=True)
    assert "resumed from checkpoint" in rerun.stderr
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert resumed["resumed_from_step"] > 0
    for key in SAME_METRICS:
        assert resumed[key] == reference[key], key
    assert (tmp_path / "run" / "train_log.csv").read_text() == (tmp_path / "reference" / "train_log.csv").read_text()


def test_checkpoint_of_another_spec_is_ignored(tmp_path):
    Trainer(digits_spec(steps=20), tmp_path / "ckpt").run()
    other = Trainer(digits_spec(steps=20, lr=0.05), tmp_path / "ckpt")
    assert other.resumed_from is None


def test_divergence_is_flagged(tmp_path):
    metrics = train_cell(digits_spec(steps=50, lr=1e6, alpha=1.0), tmp_path / "run", tmp_path / "ckpt", progress=False)
    assert metrics["diverged"] and "non-finite" in metrics["diverged_reason"]
    assert not metrics["collapsed"]  # divergence is numerical failure, a separate flag from "at chance"


def test_digits_split_is_fixed_and_stratified():
    first, second = build_task({"name": "digits"}).splits, build_task({"name": "digits"}).splits
    assert torch.equal(first.x_test, second.x_test)
    assert (len(first.y_train), len(first.y_val), len(first.y_test)) == (1258, round(0.1 * 1797), round(0.2 * 1797))
    assert sum(map(len, (first.y_train, first.y_val, first.y_test))) == 1797
    counts = torch.bincount(first.y_test)
    assert counts.max() - counts.min() <= 2  # digits classes hold 174-183 images each
    assert float(first.x_train.max()) == 1.0 and float(first.x_train.min()) == 0.0


def _write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_mnist_from_local_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    train_labels = np.repeat(np.arange(10), 12)
    _write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (120, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", train_labels)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28)), gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.repeat(np.arange(10), 3), gz=True)
    assert read_idx(tmp_path / "train-labels-idx1-ubyte").tolist() == train_labels.tolist()
    splits = load_mnist({"name": "mnist", "root": str(tmp_path), "val_size": 20})
    assert splits.x_train.shape == (100, 784) and splits.x_val.shape == (20, 784) and splits.x_test.shape == (30, 784)
    assert splits.num_classes == 10
    assert math.isclose(float(splits.x_train.max()), 1.0, abs_tol=0.01)


def test_stratified_split_partitions_every_index_once():
    from bench_powerprop.data.arrays import stratified_split

    labels = np.repeat(np.arange(3), [50, 30, 20])
    train, val, test = stratified_split(labels, [0.1, 0.2], seed=3)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    assert (len(val), len(test)) == (10, 20)
    assert np.bincount(labels[test]).tolist() == [10, 6, 4]
