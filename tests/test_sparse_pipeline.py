"""The reporting layer on the sparse_training shape: tidy rows, summaries, published join, tables, figure."""

import json

import pandas as pd
import pytest

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.reporting import tables
from bench_powerprop.reporting.figures import line_label, save_all, sparse_accuracy_vs_sparsity
from bench_powerprop.reporting.labels import accuracy_text
from bench_powerprop.reporting.published import NOT_TRANSCRIBED, PUBLISHED_COLUMNS, load_published
from bench_powerprop.reporting.rows import ROW_COLUMNS, StaleResultError, collect_rows
from bench_powerprop.reporting.summaries import summarise

from conftest import REPO, assert_pipeline_outputs_written, run_snakemake

TINY_SPARSE = str(REPO / "tests" / "configs" / "tiny_sparse.yaml")


def published_frame(rows):
    """A published-results table from (dataset, model, method, variant, alpha, sparsity, value) tuples."""
    return pd.DataFrame(
        [{"paper": "Test et al.", "dataset": d, "model": m, "method": me, "variant": va, "alpha": a, "sparsity": s,
          "metric": "top1_accuracy_percent", "value": v, "source": "test fixture"} for d, m, me, va, a, s, v in rows],
        columns=PUBLISHED_COLUMNS,
    )


def fake_rows():
    rows = []
    for method, variant, alpha, sparsity, accuracies, statuses in [
        ("dense", "default", 1.0, 0.0, [0.97, 0.98], ["ok", "ok"]),
        ("gmp", "default", 1.0, 0.9, [0.95, 0.96], ["ok", "ok"]),
        ("gmp", "default", 2.0, 0.9, [0.96, float("nan")], ["ok", "diverged"]),
        ("rigl", "uniform", 1.0, 0.9, [0.10, 0.50], ["collapsed", "ok"]),
    ]:
        for seed, (accuracy, status) in enumerate(zip(accuracies, statuses)):
            rows.append({"experiment": "e", "method": method, "variant": variant, "alpha": alpha, "sparsity": sparsity,
                         "seed": seed, "evaluation": "trained", "target_sparsity": sparsity, "actual_sparsity": sparsity,
                         "zero_fraction": sparsity, "test_accuracy": accuracy, "val_accuracy": accuracy, "status": status,
                         "training_flops_fraction": 1 - sparsity, "steps": 10, "spec_hash": f"{seed}"})
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# -- fast: the table logic ----------------------------------------------------------------
def test_accuracy_text_leaves_out_diverged_seeds_and_keeps_seeds_at_chance():
    assert accuracy_text(0.955, 0.007, 2, 2, 0, 0) == "95.5 ± 0.7"
    assert accuracy_text(0.96, float("nan"), 1, 2, 1, 0) == "96.0 (1/2 diverged)"
    assert accuracy_text(0.30, 0.28, 2, 2, 0, 1) == "30.0 ± 28.0 (1/2 at chance)"
    assert accuracy_text(float("nan"), float("nan"), 0, 2, 2, 0) == "diverged (2/2)"


def test_summary_counts_diverged_and_collapsed_and_averages_the_collapsed():
    summary = summarise(fake_rows()).set_index(["method", "alpha"])
    assert summary.loc[("gmp", 2.0), ["n_seeds", "n_included", "n_diverged"]].tolist() == [2, 1, 1]
    assert summary.loc[("gmp", 2.0), "mean"] == pytest.approx(0.96)
    rigl = summary.loc[("rigl", 1.0)]
    assert (rigl["n_collapsed"], rigl["n_included"]) == (1, 2) and rigl["mean"] == pytest.approx(0.30)


def test_summary_never_pools_cells_that_differ_on_an_axis():
    rows = fake_rows()
    other = rows[rows["method"] == "gmp"].assign(variant="b80")
    summary = summarise(pd.concat([rows, other]))
    assert len(summary[summary["method"] == "gmp"]) == 4 and (summary["n_seeds"] == 2).all()


def test_paper_table_joins_only_same_dataset_model_method_variant_sparsity_and_alpha_side():
    summary = summarise(fake_rows())
    published = published_frame([
        ("digits", "mlp_300_100", "gmp", "default", 1, 0.9, 90.0),        # joins the gmp (α=1) row
        ("digits", "mlp_300_100", "dense", "default", 1, 0.0, 99.0),      # joins the dense row
        ("imagenet", "resnet50", "gmp", "default", 1, 0.9, 73.91),        # other dataset: never joined
        ("digits", "mlp_300_100", "gmp", "default", 1, 0.8, 80.0),        # other sparsity: never joined
        ("digits", "mlp_300_100", "rigl", "default", 1, 0.9, 70.0),       # other variant: never joined
    ])
    table = tables.paper_table(summary, published, "digits", "mlp_300_100").set_index("row")
    assert list(table.index) == ["dense, α=1 (no Powerprop)", "gmp, α=1 (no Powerprop)", "gmp, α=2 (Powerprop)",
                                 "rigl [uniform], α=1 (no Powerprop)"]
    gmp = table.loc["gmp, α=1 (no Powerprop)"]
    assert (gmp["ours"], gmp["published"], gmp["ours_minus_published"]) == ("95.5 ± 0.7", "90.00 (Test et al.)", "+5.50 pp")
    assert table.loc["gmp, α=2 (Powerprop)", "published"] == NOT_TRANSCRIBED  # an α=1 number is not Powerprop's
    assert table.loc["gmp, α=2 (Powerprop)", "ours"] == "96.0 (1/2 diverged)"
    assert table.loc["rigl [uniform], α=1 (no Powerprop)", "published"] == NOT_TRANSCRIBED
    assert table.loc["dense, α=1 (no Powerprop)", "ours_minus_published"] == "-1.50 pp"
    assert "73.91" not in table.to_string()


def test_a_powerprop_number_with_another_alpha_is_labelled_with_its_alpha():
    summary = summarise(fake_rows())
    published = published_frame([("digits", "mlp_300_100", "gmp", "default", 1.5, 0.9, 91.0)])
    table = tables.paper_table(summary, published, "digits", "mlp_300_100").set_index("row")
    assert table.loc["gmp, α=2 (Powerprop)", "published"] == "91.00 (Test et al., α=1.5)"
    assert table.loc["gmp, α=1 (no Powerprop)", "published"] == NOT_TRANSCRIBED


def test_other_settings_go_to_the_not_comparable_reference_table():
    published = published_frame([
        ("imagenet", "resnet50", "gmp", "default", 1, 0.9, 73.91),
        ("imagenet", "resnet50", "rigl", "uniform", 1, 0.9, 72.02),
        ("imagenet", "resnet50", "topkast", "default", float("nan"), 0.9, float("nan")),
        ("digits", "mlp_300_100", "gmp", "default", 1, 0.9, 90.0),
    ])
    reference = tables.reference_table(published, ["gmp", "rigl"], "digits", "mlp_300_100")
    assert set(reference["method"]) == {"gmp, α=1 (no Powerprop)", "rigl [uniform], α=1 (no Powerprop)"}
    assert set(reference["dataset / model"]) == {"imagenet / resnet50"}


def test_markdown_puts_flops_in_their_own_table(tmp_path):
    summary = summarise(fake_rows())
    table = tables.paper_table(summary, published_frame([]), "digits", "mlp_300_100")
    manifest = {"experiment": "e", "data": "digits", "model": {"name": "mlp", "hidden": [300, 100]},
                "train": {"steps": 10, "batch_size": 60, "lr": 0.1}, "methods": {}, "variants": {"rigl": {"uniform": {}}}}
    markdown = tables.sparse_markdown(table, pd.DataFrame(), manifest, "sparse training")
    accuracy, flops = markdown.split("## Training FLOPs")
    assert "0.100" not in accuracy and "0.100" in flops  # FLOPs are not interleaved with accuracies
    assert "No published number exists for digits / mlp_300_100" in accuracy
    assert all(len(line) < 160 for line in accuracy.splitlines() if line.startswith("|"))  # readable in a terminal


def stale_manifest(tmp_path, metrics_hash):
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    cell = {"experiment": "e", "method": "dense", "variant": "default", "alpha": 1.0, "sparsity": 0.0, "seed": 0}
    metrics = {"spec_hash": metrics_hash, "test_accuracy": 0.9, "val_accuracy": 0.9, "diverged": False, "chance_threshold": 0.15,
               "actual_sparsity": 0.0, "zero_fraction": 0.0, "steps": 1, "training_flops_fraction": 1.0}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return {"cells": [{**cell, "run_dir": str(run_dir), "spec_hash": "a" * 16}]}


def test_aggregation_refuses_a_result_from_another_spec(tmp_path):
    with pytest.raises(StaleResultError, match="rerun the workflow"):
        collect_rows(stale_manifest(tmp_path, "0" * 16))
    rows = collect_rows(stale_manifest(tmp_path, "a" * 16))
    assert rows["spec_hash"].tolist() == ["a" * 16] and list(rows.columns) == ROW_COLUMNS
    assert rows[list(CELL_COLUMNS)].iloc[0].tolist()[:6] == ["e", "dense", "default", 1.0, 0.0, 0]
    assert pd.isna(rows["level"].iloc[0])  # an optional axis the cell does not set


def test_default_config_declares_the_sparse_experiment():
    from bench_powerprop.config import grid_cells, load_yaml, validate_config

    config = load_yaml(REPO / "configs" / "default.yaml")
    validate_config(config)
    experiment = config["experiments"]["sparse_digits"]
    assert experiment["kind"] == "sparse_training" and "sparse_digits" in config["active_experiments"]
    methods = {cell.method for cell in grid_cells(config) if cell.experiment == "sparse_digits"}
    assert methods == {"dense", "gmp", "rigl", "topkast", "set", "static", "dsr"}


def test_published_results_default_loads():
    assert not load_published(REPO / "configs" / "published_results.csv").empty


def test_figure_legend_counts_diverged_and_at_chance_seeds(tmp_path):
    rows = fake_rows()
    gmp2 = rows[(rows["method"] == "gmp") & (rows["alpha"] == 2.0)]
    assert line_label("α=2 (Powerprop)", gmp2, "sparsity").endswith("(1/2 diverged)")
    rigl = rows[rows["method"] == "rigl"]
    assert line_label("α=1 (no Powerprop)", rigl, "sparsity").endswith("(1/2 at chance)")
    save_all({tmp_path / "figure.png": sparse_accuracy_vs_sparsity(rows, "test")})
    assert (tmp_path / "figure.png").stat().st_size > 0


# -- slow: a real Snakemake run ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_sparse_end_to_end_run(workdir):
    published = workdir / "published_test.csv"
    published_frame([
        ("digits", "mlp_300_100", "gmp", "", 1, 0.9, 42.0),        # a test-only number, never a real citation
        ("imagenet", "resnet50", "gmp", "", 1, 0.9, 73.91),
    ]).to_csv(published, index=False)
    run_snakemake("-c2", "--configfile", TINY_SPARSE, "--config", f"published_results={published}", cwd=workdir)

    experiment = workdir / "results" / "sparse_digits"
    assert_pipeline_outputs_written(experiment, "sparse_training")
    runs = pd.read_csv(experiment / "tables" / "sparse_runs.csv")
    assert len(runs) == 2 + 2 * 2  # dense × α, then 2 methods × α (1 sparsity, 1 seed)
    assert list(runs.columns) == ROW_COLUMNS
    sparse_rows = runs[runs["method"] != "dense"]
    assert (sparse_rows["actual_sparsity"] > 0.85).all() and (sparse_rows["training_flops_fraction"] < 1).all()

    table = pd.read_csv(experiment / "tables" / "sparse_paper_table.csv").set_index("row")
    assert list(dict.fromkeys(table.index)) == [
        "dense, α=1 (no Powerprop)", "dense, α=2 (Powerprop)", "gmp, α=1 (no Powerprop)", "gmp, α=2 (Powerprop)",
        "rigl, α=1 (no Powerprop)", "rigl, α=2 (Powerprop)"]
    assert table.loc["gmp, α=1 (no Powerprop)", "published"] == "42.00 (Test et al.)"
    assert table.loc["gmp, α=1 (no Powerprop)", "ours_minus_published"].endswith(" pp")
    assert table.loc["rigl, α=1 (no Powerprop)", "published"] == NOT_TRANSCRIBED

    markdown = (experiment / "tables" / "sparse_paper_table.md").read_text()
    assert "Dataset digits, model mlp_300_100" in markdown and "30 steps of batch 60" in markdown
    assert "NOT comparable" in markdown and "imagenet / resnet50" in markdown and "73.91" in markdown

    again = run_snakemake("-n", "-c2", "--configfile", TINY_SPARSE, "--config", f"published_results={published}", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
