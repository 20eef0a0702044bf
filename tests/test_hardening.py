"""Hostile-user probes: bad specs, damaged results, two processes on one cell, unreadable files, odd results.

Every probe goes through the real entry point (the CLI, the trainer, a real Snakemake run) and
checks the one-line message or the repaired result.
"""

import hashlib
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench_powerprop.io import write_json_atomic
from bench_powerprop.reporting import reports, tables
from bench_powerprop.reporting.figures import sparse_accuracy_vs_sparsity, weight_histograms
from bench_powerprop.reporting.rows import ROW_COLUMNS
from bench_powerprop.reporting.summaries import summarise
from bench_powerprop.training import trainer as trainer_module
from bench_powerprop.training.checkpointing import CheckpointDirectoryError, load_latest_checkpoint, save_checkpoint
from bench_powerprop.training.trainer import train_cell

from conftest import REPO, run_snakemake
from helpers import digits_spec, run_folder, start_training, train_command, wait_for_checkpoint

TINY = str(REPO / "tests" / "configs" / "tiny.yaml")
CLI = [sys.executable, "-m", "bench_powerprop"]


def cli(*arguments, **kwargs):
    return subprocess.run([*CLI, *arguments], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, **kwargs)


# -- specs on the command line ------------------------------------------------------------------
def test_train_rejects_a_spec_that_is_not_json_or_incomplete_in_one_line(tmp_path):
    bad_json = cli("train", "--spec", "{not json", "--run-dir", str(tmp_path / "r"), "--checkpoint-dir", str(tmp_path / "c"))
    assert bad_json.returncode == 2 and "argument --spec: not valid JSON" in bad_json.stderr
    empty = cli("train", "--spec", "{}", "--run-dir", str(tmp_path / "r"), "--checkpoint-dir", str(tmp_path / "c"))
    assert empty.returncode == 2
    assert empty.stderr.strip() == ("bench_powerprop: spec: missing experiment, method, alpha, sparsity, seed, data, model, train, "
                                    "train.steps, train.batch_size, train.lr "
                                    "(the workflow writes specs; see `train --help` for an example)")
    bad_option = json.dumps({**digits_spec(method="gmp", sparsity=0.9), "method_options": {"frequency": 0}})
    rejected = cli("train", "--spec", bad_option, "--run-dir", str(tmp_path / "r"), "--checkpoint-dir", str(tmp_path / "c"))
    assert rejected.returncode == 2 and "spec.method_options.frequency: must be an integer >= 1, got 0" in rejected.stderr
    assert not (tmp_path / "r").exists()


def test_every_command_documents_every_argument_with_an_example():
    from bench_powerprop.cli import build_parser

    commands = next(action for action in build_parser()._actions if action.dest == "command").choices
    for name, parser in commands.items():
        assert re.search(r"examples?:\n  python -m bench_powerprop", parser.description), name
        for action in parser._actions:
            if action.dest != "help":
                assert action.help and len(action.help) > 10, f"{name} {action.dest} has no help text"
    assert re.search(r"examples?:", cli("train", "--help", check=True).stdout)


# -- files ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_outputs_follow_the_users_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "out.json", {"a": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == mode


def test_an_unwritable_checkpoint_directory_fails_before_any_step(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the checkpoint directory should go")
    built = []
    monkeypatch.setattr(trainer_module, "Trainer", lambda *args, **kwargs: built.append(args) or pytest.fail("a Trainer was built"))
    with pytest.raises(CheckpointDirectoryError, match="checkpoint_dir: cannot write checkpoints"):
        train_cell(digits_spec(steps=3000), tmp_path / "run", blocker / "ckpt", progress=False)
    assert built == [] and not (tmp_path / "run").exists()  # no model, no data, no step


def test_a_checkpoint_that_matches_its_checksum_but_does_not_load_is_skipped_by_name(tmp_path, caplog):
    save_checkpoint(tmp_path, 10, {"step": 10})
    newest = save_checkpoint(tmp_path, 20, {"step": 20})
    newest.write_bytes(b"not a pickle")
    (tmp_path / (newest.name + ".sha256")).write_text(hashlib.sha256(b"not a pickle").hexdigest() + "\n")
    assert load_latest_checkpoint(tmp_path) == {"step": 10}
    assert f"checkpoint {newest} does not load" in caplog.text


def test_a_failed_training_job_leaves_no_outputs(tmp_path, monkeypatch):
    from bench_powerprop.training import trainer

    def fail(self):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(trainer.Trainer, "run", fail)
    with pytest.raises(RuntimeError, match="injected failure"):
        train_cell(digits_spec(steps=10), tmp_path / "run", tmp_path / "ckpt", progress=False)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_a_failed_figure_job_writes_no_figure(tmp_path, monkeypatch):
    rows = fake_trained_rows()
    manifest = {"experiment": "e", "data": "digits", "kind": "sparse_training", "cells": []}
    out = tmp_path / "e"
    (out / "tables").mkdir(parents=True)
    rows.to_csv(out / "tables" / "sparse_runs.csv", index=False)
    monkeypatch.setattr(reports.figures, "sparse_accuracy_vs_sparsity", lambda *args: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        reports.write_figures(manifest, out)
    assert not (out / "figures").exists()


def test_a_second_process_for_the_same_cell_fails_clearly(tmp_path):
    spec = digits_spec(steps=30000, checkpoint_every=100)
    first = start_training(spec, tmp_path / "run", tmp_path / "ckpt")
    try:
        wait_for_checkpoint(tmp_path / "ckpt", first)
        second = subprocess.run(train_command(spec, tmp_path / "run2", tmp_path / "ckpt"), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"another process (pid {first.pid}) is training this cell" in second.stderr
    finally:
        first.kill()
        first.wait()
    short = digits_spec(steps=20)  # another spec: its own run, on the same (now free) checkpoint directory
    after = subprocess.run(train_command(short, tmp_path / "run", tmp_path / "ckpt"), capture_output=True, text=True, timeout=120)
    assert after.returncode == 0, after.stderr[-2000:]  # a killed holder's lock is gone with it


# -- results --------------------------------------------------------------------------------------
def fake_trained_rows(statuses=("ok", "ok"), accuracies=(0.9, 0.8)):
    """Tidy rows of two seeds (every ROW_COLUMNS column; the weight-statistics ones empty)."""
    return pd.DataFrame(columns=ROW_COLUMNS, data=[
        {"experiment": "e", "method": "gmp", "variant": "default", "alpha": 2.0, "sparsity": 0.9, "seed": seed, "level": None,
         "evaluation": "trained", "target_sparsity": 0.9, "actual_sparsity": 0.9, "zero_fraction": 0.9,
         "test_accuracy": accuracy, "val_accuracy": accuracy, "status": status, "training_flops_fraction": 0.2,
         "steps": 10, "spec_hash": "x"}
        for seed, (status, accuracy) in enumerate(zip(statuses, accuracies))])


def test_a_run_at_chance_is_a_collapsed_result_kept_in_the_mean(tmp_path):
    metrics = train_cell(digits_spec(steps=1, lr=1e-9), tmp_path / "run", tmp_path / "ckpt", progress=False)
    assert metrics["collapsed"] and not metrics["diverged"]  # an untrained network is at chance, not diverged
    summary = summarise(fake_trained_rows(("collapsed", "ok"), (0.1, 0.9))).iloc[0]
    assert (summary["n_included"], summary["n_collapsed"], summary["n_diverged"]) == (2, 1, 0)
    assert summary["mean"] == pytest.approx(0.5)


def test_figures_of_diverged_runs_say_so(tmp_path):
    rows = fake_trained_rows(("diverged", "diverged"), (math.nan, math.nan))
    figure = sparse_accuracy_vs_sparsity(rows, "all diverged")
    assert any("every seed diverged" in text.get_text() for axis in figure.axes for text in axis.texts)
    histograms = weight_histograms({"α=1": np.array([0.5, 1.0]), "α=2": np.array([np.nan, 1.0])}, "t")
    legend = [text.get_text() for text in histograms.axes[0].get_legend().get_texts()]
    assert legend == ["α=1: 0% below 1%", "α=2: diverged or all zero"]


def test_cells_that_differ_on_any_axis_are_never_pooled():
    rows = pd.concat([fake_trained_rows(), fake_trained_rows().assign(method="dense", sparsity=0.0, target_sparsity=0.0)])
    summary = summarise(rows)
    assert len(summary) == 2 and (summary["n_seeds"] == 2).all()
    label = tables.line_key_label(summary)
    assert label("gmp", "default", 0.9, 2.0) != label("dense", "default", 0.0, 2.0)


def test_table_headers_come_from_the_spec_not_the_free_text_description():
    summary = summarise(fake_trained_rows().assign(evaluation="oneshot"))
    manifest = {"experiment": "e", "data": "digits", "model": {"name": "mlp", "hidden": [300, 100]},
                "description": "plain SGD (lr 0.1, batch 60)", "train": {"steps": 10, "batch_size": 30, "lr": 0.05},
                "prune": {"keep_levels": [0.1]}}
    markdown = tables.oneshot_markdown(summary, manifest, "one-shot pruning")
    assert "lr 0.05" in markdown and "batch 30" in markdown and "lr 0.1" not in markdown


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_damaged_finished_cells_are_rebuilt_by_a_plain_rerun(workdir):
    run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    runs = workdir / "results" / "oneshot_digits" / "runs"
    truncated = run_folder(runs / "method~dense/variant~default/alpha~1/sparsity~0/seed~0")
    deleted = run_folder(runs / "method~dense/variant~default/alpha~2/sparsity~0/seed~1")
    intact = run_folder(runs / "method~dense/variant~default/alpha~2/sparsity~0/seed~0")
    intact_time = (intact / "metrics.json").stat().st_mtime_ns
    table = workdir / "results" / "oneshot_digits" / "tables" / "oneshot_runs.csv"
    table_time = table.stat().st_mtime_ns
    (truncated / "metrics.json").write_text((truncated / "metrics.json").read_text()[:40])
    (deleted / "model.pt").unlink()

    planned = run_snakemake("-n", "--configfile", TINY, cwd=workdir)  # a dry run reports and changes nothing
    assert (truncated / "metrics.json").is_file() and table.stat().st_mtime_ns == table_time
    assert f"{truncated.relative_to(workdir)}: metrics.json is not valid JSON; a real run retrains it" in planned.stderr
    assert f"{deleted.relative_to(workdir)}: model.pt is missing; a real run retrains it" in planned.stderr
    # every declared output is still there, so Snakemake's dry run cannot list the retraining; it says so
    assert planned.stderr.count("a real run retrains it, removing its outputs first (this dry run cannot list that job") == 2

    repaired = run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    assert f"{truncated.relative_to(workdir)}: metrics.json is not valid JSON; retraining it" in repaired.stderr
    assert json.loads((truncated / "metrics.json").read_text())["steps"] == 40 and (deleted / "model.pt").is_file()
    assert (intact / "metrics.json").stat().st_mtime_ns == intact_time  # untouched cells are not recomputed
    assert table.stat().st_mtime_ns > table_time  # what depends on the repaired cells is rebuilt
    again = run_snakemake("-n", "--configfile", TINY, cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
