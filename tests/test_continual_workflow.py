"""The continual and adaptive-α pipeline shapes through the real Snakemake, on a few steps."""

import json

import pandas as pd
import pytest

from bench_powerprop.reporting.rows import CONTINUAL_COLUMNS, ROW_COLUMNS

from conftest import REPO, assert_pipeline_outputs_written, run_snakemake
from helpers import run_folder

TINY = str(REPO / "tests" / "configs" / "tiny_continual.yaml")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_continual_and_adaptive_alpha_end_to_end(workdir):
    run_snakemake("-c2", "--configfile", TINY, cwd=workdir)
    continual = workdir / "results" / "continual_digits"
    assert_pipeline_outputs_written(continual, "continual")
    runs = pd.read_csv(continual / "tables" / "continual_runs.csv")
    assert list(runs.columns) == ROW_COLUMNS + CONTINUAL_COLUMNS
    assert len(runs) == 4 * (1 + 2 + 3)  # 4 cells × a lower-triangular 3 × 3 matrix
    assert set(runs["evaluation"]) == {"task"} and set(runs["method"]) == {"packnet", "efficient_packnet"}
    for _, cell in runs.groupby(["method", "alpha"]):  # no forgetting, read from the table
        own = cell[cell["trained_tasks"] == cell["evaluated_task"]].set_index("evaluated_task")["test_accuracy"]
        assert (cell["test_accuracy"].to_numpy() == own.loc[cell["evaluated_task"]].to_numpy()).all()
    packnet = runs[(runs["method"] == "packnet") & (runs["trained_tasks"] == 3)]
    assert packnet["capacity_total"].eq(1.0).all() and packnet["capacity_new"].sum() == pytest.approx(2.0)  # 2 cells
    matrix = pd.read_csv(continual / "tables" / "continual_accuracy_matrix.csv")
    assert len(matrix) == 4 * 6 and (matrix["n_seeds"] == 1).all() and matrix["mean_capacity"].notna().all()
    summary = pd.read_csv(continual / "tables" / "continual_summary.csv")
    assert len(summary) == 4 * 3 and summary["mean"].notna().all()  # 4 cells × 3 tasks learnt
    assert "How many tasks fit" in (continual / "tables" / "continual_summary.md").read_text()

    adaptive = workdir / "results" / "adaptive_alpha_digits"
    assert_pipeline_outputs_written(adaptive, "adaptive_alpha")
    trace = pd.read_csv(adaptive / "tables" / "alpha_trace.csv")
    assert len(trace) == 2 * 7  # two cells, measured at steps 0, 10, ..., 60
    capped = trace[trace["variant"] == "capped"]
    metrics = json.loads((run_folder(adaptive / "runs/method~adaptive_alpha/variant~capped/alpha~1.5/sparsity~0/seed~0")
                          / "metrics.json").read_text())
    assert capped["next_alpha"].iloc[-1] == metrics["final_alpha"] <= 3.0
    assert set(trace.loc[trace["variant"] == "fixed", "next_alpha"]) == {1.0}

    again = run_snakemake("-n", "-c2", "--configfile", TINY, cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_fuller_grid_config_validates():
    from bench_powerprop.config import grid_cells, load_configs, validate_config

    config = load_configs([REPO / "configs" / "default.yaml", REPO / "configs" / "continual_full.yaml"])
    validate_config(config)
    cells = grid_cells(config)
    assert {cell.variant for cell in cells if cell.method == "efficient_packnet"} == {"default", "random", "retrain", "binary"}
    assert len(cells) == 90 + 40
