"""The Snakemake DAG itself: dry run, lint, and a tiny real end-to-end run."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from bench_powerprop.config import load_configs
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.plan import Plan

from conftest import REPO, assert_pipeline_outputs_written, run_snakemake
from helpers import run_folder

TINY = str(REPO / "tests" / "configs" / "tiny.yaml")


def test_dry_run_lists_the_default_grid(workdir):
    result = run_snakemake("-n", "--quiet", "rules", cwd=workdir)
    counts = dict(line.split() for line in result.stdout.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
    plan = Plan(load_configs([str(REPO / "configs" / "default.yaml")]))
    pruned = [cell for kind, pipeline in PIPELINES.items() if "oneshot_prune.csv" in pipeline.cell_files
              for name in plan.experiments_of_kind(kind) for cell in plan.cells_of(name)]
    assert int(counts["train"]) == len(plan.cells) and int(counts["prune_eval"]) == len(pruned)
    assert counts["deploy"] == "3"  # oneshot_mnist, sparse_digits and sparse_mnist5k: the MLP experiments of those kinds


def test_lint_is_clean(workdir):
    result = run_snakemake("--lint", cwd=workdir, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_end_to_end_run(workdir):
    run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    experiment = workdir / "results" / "oneshot_digits"
    assert_pipeline_outputs_written(experiment, "oneshot")
    deployed = pd.read_csv(experiment / "tables" / "deploy.csv")
    assert set(deployed["alpha"]) == {1.0, 2.0} and set(deployed["seed"]) == {0} and {"csr"} <= set(deployed["form"])
    runs = pd.read_csv(experiment / "tables" / "oneshot_runs.csv")
    assert len(runs) == 2 * 2 * 3  # α × seeds × keep levels
    assert set(runs.columns) >= {"experiment", "method", "variant", "alpha", "sparsity", "seed", "test_accuracy", "status"}
    assert set(runs["evaluation"]) == {"oneshot"} and set(runs["method"]) == {"dense"}  # the training method, not "oneshot"
    run_dir = run_folder(experiment / "runs" / "method~dense" / "variant~default" / "alpha~2" / "sparsity~0" / "seed~1")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["spec"]["alpha"] == 2.0 and info["spec"]["seed"] == 1
    assert (workdir / "checkpoints" / "oneshot_digits" / "runs").exists()

    again = run_snakemake("-n", "-c2", "--configfile", TINY, cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr

    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["spec_hash"] = "0" * 16
    metrics_path.write_text(json.dumps(metrics))
    manifest = workdir / "results" / "oneshot_digits" / "manifest.json"
    refused = subprocess.run(
        [sys.executable, "-m", "bench_powerprop", "report", "tables", "--manifest", str(manifest), "--out-dir", str(workdir / "out")],
        capture_output=True, text=True, cwd=workdir,
    )
    assert refused.returncode != 0 and "StaleResultError" in refused.stderr
    assert not (workdir / "out").exists()
    assert not (workdir / "r.csv").exists()
