"""Summaries of tidy rows: mean ± std over seeds per group of every other column that names the evaluation."""

from __future__ import annotations

import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.reporting.rows import COLLAPSED, DIVERGED

#: a summary groups by every cell axis but the seed, and by what was evaluated
GROUP_COLUMNS = [column for column in CELL_COLUMNS if column != "seed"] + ["evaluation", "target_sparsity"]
MEAN_COLUMNS = ["actual_sparsity", "zero_fraction", "training_flops_fraction"]


def summarise(rows: pd.DataFrame, value: str = "test_accuracy", by: list[str] = GROUP_COLUMNS) -> pd.DataFrame:
    """Per group: mean/std of ``value`` over seeds that did not diverge; seed, diverged and at-chance counts.

    Groups keep empty keys (``level`` of cells outside a pruning chain).
    """
    included = rows[rows["status"] != DIVERGED]
    stats = included.groupby(by, dropna=False)[value].agg(mean="mean", std="std", n_included="count")
    counts = rows.assign(diverged=rows["status"] == DIVERGED, collapsed=rows["status"] == COLLAPSED).groupby(by, dropna=False).agg(
        n_seeds=("seed", "size"), n_diverged=("diverged", "sum"), n_collapsed=("collapsed", "sum"))
    means = included.groupby(by, dropna=False)[MEAN_COLUMNS].mean().add_prefix("mean_")
    summary = counts.join(stats, how="left").join(means, how="left").reset_index()
    for column in ("n_included", "n_diverged", "n_collapsed"):
        summary[column] = summary[column].fillna(0).astype(int)
    return summary


def stat_columns(row) -> tuple:
    """The arguments of ``labels.accuracy_text`` from a summary row."""
    return row["mean"], row["std"], row["n_included"], row["n_seeds"], row["n_diverged"], row["n_collapsed"]
