"""The sparse_training pipeline shape: tables, published-number join, figure, stale-result refusal."""

import json

import pandas as pd
import pytest

from bench_powerprop.io import spec_hash
from bench_powerprop.report import StaleResultError
from bench_powerprop.sparse_report import (
    NOT_TRANSCRIBED,
    PUBLISHED_COLUMNS,
    load_published,
    ours_text,
    paper_table,
    published_method,
    reference_table,
    sparse_runs_table,
    sparse_summary,
)
from conftest import REPO, run_snakemake

TINY_SPARSE = str(REPO / "tests" / "configs" / "tiny_sparse.yaml")
SPARSE_OUTPUTS = [
    "tables/sparse_runs.csv",
    "tables/sparse_summary.csv",
    "tables/sparse_paper_table.csv",
    "tables/sparse_paper_table.md",
    "figures/sparse_accuracy_vs_sparsity.png",
]
RUN_COLUMNS = {"experiment", "method", "alpha", "sparsity", "seed", "test_accuracy", "val_accuracy", "diverged",
               "actual_sparsity", "training_flops_fraction", "spec_hash"}


def published_frame(rows):
    """A published-results table from (dataset, model, method, alpha, sparsity, value) tuples."""
    return pd.DataFrame(
        [{"paper": "Test et al.", "dataset": d, "model": m, "method": me, "alpha": a, "sparsity": s,
          "metric": "top1_accuracy_percent", "value": v, "source": "test fixture"} for d, m, me, a, s, v in rows],
        columns=PUBLISHED_COLUMNS,
    )


def fake_runs():
    rows = []
    for method, alpha, sparsity, accuracies, diverged in [
        ("dense", 1.0, 0.0, [0.97, 0.98], [False, False]),
        ("gmp", 1.0, 0.9, [0.95, 0.96], [False, False]),
        ("gmp", 2.0, 0.9, [0.96, 0.10], [False, True]),
    ]:
        for seed, (accuracy, flag) in enumerate(zip(accuracies, diverged)):
            rows.append({"experiment": "e", "method": method, "alpha": alpha, "sparsity": sparsity, "seed": seed,
                         "test_accuracy": accuracy, "val_accuracy": accuracy, "diverged": flag, "diverged_reason": None,
                         "actual_sparsity": sparsity, "training_flops_fraction": 1 - sparsity, "steps": 10,
                         "spec_hash": f"{seed}"})
    return pd.DataFrame(rows)


# -- fast: the table logic ----------------------------------------------------------------
def test_ours_text_counts_diverged_seeds_and_never_averages_them():
    assert ours_text(0.955, 0.007, 2, 2) == "95.5 ± 0.7 (n=2)"
    assert ours_text(0.96, float("nan"), 1, 2) == "96.0 (n=1; 1 of 2 diverged)"
    assert ours_text(float("nan"), float("nan"), 0, 2) == "diverged (2 of 2)"


def test_paper_table_joins_only_same_dataset_model_method_sparsity_and_alpha_side():
    summary = sparse_summary(fake_runs())
    published = published_frame([
        ("digits", "mlp_300_100", "gmp", 1, 0.9, 90.0),        # joins the gmp (α=1) row
        ("digits", "mlp_300_100", "dense", 1, 0.0, 99.0),      # joins the dense row
        ("imagenet", "resnet50", "gmp", 1, 0.9, 73.91),        # other dataset: never joined
        ("digits", "mlp_300_100", "gmp", 1, 0.8, 80.0),        # other sparsity: never joined
    ])
    table = paper_table(summary, published, "digits", "mlp_300_100").set_index("row")
    assert list(table.index) == ["dense", "gmp", "gmp + Powerprop (α=2)"]
    published_column = "90% published (digits, mlp_300_100)"
    assert table.loc["gmp", "90% ours"] == "95.5 ± 0.7 (n=2)"
    assert table.loc["gmp", published_column] == "90.00 (Test et al.)"
    assert table.loc["gmp", "90% ours − published"] == "+5.50 pp"
    assert table.loc["gmp + Powerprop (α=2)", published_column] == NOT_TRANSCRIBED  # α=1 number is not Powerprop's
    assert table.loc["gmp + Powerprop (α=2)", "90% ours"] == "96.0 (n=1; 1 of 2 diverged)"
    assert table.loc["dense", "0% (dense) ours − published"] == "-1.50 pp"
    assert "73.91" not in table.to_string()


def test_non_default_layer_distribution_is_compared_with_its_own_published_rows():
    assert published_method("rigl", {}) == "rigl"
    assert published_method("rigl", {"distribution": "erk"}) == "rigl"
    assert published_method("rigl", {"distribution": "uniform"}) == "rigl_uniform"


def test_other_settings_go_to_the_not_comparable_reference_table():
    published = published_frame([
        ("imagenet", "resnet50", "gmp", 1, 0.9, 73.91),
        ("imagenet", "resnet50", "rigl_uniform", 1, 0.9, 72.02),
        ("imagenet", "resnet50", "topkast", float("nan"), 0.9, float("nan")),
        ("digits", "mlp_300_100", "gmp", 1, 0.9, 90.0),
    ])
    reference = reference_table(published, ["gmp", "rigl"], "digits", "mlp_300_100")
    assert set(reference["method"]) == {"gmp", "rigl_uniform"}
    assert set(reference["dataset / model"]) == {"imagenet / resnet50"}


def test_aggregation_refuses_a_result_from_another_spec(tmp_path):
    spec = {"experiment": "e", "method": "dense", "alpha": 1.0, "sparsity": 0.0, "seed": 0}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"spec": spec}))
    metrics = {"spec_hash": "0" * 16, "test_accuracy": 0.9, "val_accuracy": 0.9, "diverged": False,
               "sparsity": 0.0, "steps": 1, "training_flops_fraction": 1.0}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(StaleResultError):
        sparse_runs_table({str(run_dir): spec_hash(spec)})
    metrics["spec_hash"] = spec_hash(spec)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    assert sparse_runs_table({str(run_dir): spec_hash(spec)})["spec_hash"].tolist() == [spec_hash(spec)]


def test_default_config_declares_the_sparse_experiment():
    from bench_powerprop.config import grid_cells, load_yaml, validate_config

    config = load_yaml(REPO / "configs" / "default.yaml")
    validate_config(config)
    experiment = config["experiments"]["sparse_digits"]
    assert experiment["kind"] == "sparse_training" and "sparse_digits" in config["active_experiments"]
    methods = {cell.method for cell in grid_cells(config) if cell.experiment == "sparse_digits"}
    assert methods == {"dense", "gmp", "rigl", "topkast", "set", "static"}


# -- slow: a real Snakemake run ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_sparse_end_to_end_run(workdir):
    published = workdir / "published_test.csv"
    published_frame([
        ("digits", "mlp_300_100", "gmp", 1, 0.9, 42.0),        # a test-only number, never a real citation
        ("imagenet", "resnet50", "gmp", 1, 0.9, 73.91),
    ]).to_csv(published, index=False)
    run_snakemake("-c2", "--configfile", TINY_SPARSE, "--config", f"published_results={published}", cwd=workdir)

    experiment = workdir / "results" / "sparse_digits"
    for name in SPARSE_OUTPUTS:
        assert (experiment / name).stat().st_size > 0, name
    runs = pd.read_csv(experiment / "tables" / "sparse_runs.csv")
    assert len(runs) == 2 + 2 * 2  # dense × α, then 2 methods × α (1 sparsity, 1 seed)
    assert RUN_COLUMNS <= set(runs.columns)
    sparse_rows = runs[runs["method"] != "dense"]
    assert (sparse_rows["actual_sparsity"] > 0.85).all() and (sparse_rows["training_flops_fraction"] < 1).all()

    table = pd.read_csv(experiment / "tables" / "sparse_paper_table.csv").set_index("row")
    assert list(table.index) == ["dense", "dense + Powerprop (α=2)", "gmp", "gmp + Powerprop (α=2)",
                                 "rigl", "rigl + Powerprop (α=2)"]
    assert {"0% (dense) ours", "90% ours", "90% published (digits, mlp_300_100)", "90% ours − published"} <= set(table.columns)
    assert table.loc["gmp", "90% published (digits, mlp_300_100)"] == "42.00 (Test et al.)"
    assert table.loc["gmp", "90% ours − published"].endswith(" pp")
    assert table.loc["rigl", "90% published (digits, mlp_300_100)"] == NOT_TRANSCRIBED

    markdown = (experiment / "tables" / "sparse_paper_table.md").read_text()
    assert "dataset digits, model mlp_300_100" in markdown and "30 steps of batch 60" in markdown
    assert "NOT comparable" in markdown and "imagenet / resnet50" in markdown and "73.91" in markdown

    again = run_snakemake("-n", "-c2", "--configfile", TINY_SPARSE, "--config", f"published_results={published}", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_published_results_default_loads():
    assert not load_published(REPO / "configs" / "published_results.csv").empty


def test_a_powerprop_number_with_another_alpha_is_labelled_with_its_alpha():
    summary = sparse_summary(fake_runs())
    published = published_frame([("digits", "mlp_300_100", "gmp", 1.5, 0.9, 91.0)])
    table = paper_table(summary, published, "digits", "mlp_300_100").set_index("row")
    assert table.loc["gmp + Powerprop (α=2)", "90% published (digits, mlp_300_100)"] == "91.00 (Test et al., α=1.5)"
    assert table.loc["gmp", "90% published (digits, mlp_300_100)"] == NOT_TRANSCRIBED


def test_figure_legend_counts_diverged_runs(tmp_path):
    from bench_powerprop.sparse_report import line_label, sparse_accuracy_figure

    runs = fake_runs()
    assert line_label(2.0, runs[(runs["method"] == "gmp") & (runs["alpha"] == 2.0)]).endswith("1 of 2 runs diverged (left out)")
    sparse_accuracy_figure(runs, tmp_path / "figure.png", "test")
    assert (tmp_path / "figure.png").stat().st_size > 0
