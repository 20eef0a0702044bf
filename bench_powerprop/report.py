"""Tidy results tables: one row per (experiment, method, α, sparsity, seed), and summaries.

Diverged runs stay in the tidy table (flagged) and are counted, never averaged, in summaries.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench_powerprop.io import read_json, write_csv_atomic, write_text_atomic

CELL_COLUMNS = ["experiment", "method", "alpha", "sparsity", "seed"]
GROUP_COLUMNS = ["experiment", "method", "alpha", "sparsity"]


class StaleResultError(RuntimeError):
    """A result file was produced for a different spec than the cell it sits in."""


def checked_metrics(run_dir: Path, expected_hash: str) -> dict:
    metrics = read_json(Path(run_dir) / "metrics.json")
    if metrics.get("spec_hash") != expected_hash:
        raise StaleResultError(
            f"{run_dir}/metrics.json has spec hash {metrics.get('spec_hash')!r} but the cell's spec hashes to "
            f"{expected_hash!r}: rerun that cell (snakemake --forcerun train) instead of mixing results"
        )
    return metrics


def oneshot_runs_table(expected_hashes: dict[str, str], prune_file: str = "oneshot_prune.csv") -> pd.DataFrame:
    frames = []
    for run_dir, expected in sorted(expected_hashes.items()):
        checked_metrics(run_dir, expected)
        frame = pd.read_csv(Path(run_dir) / prune_file)
        if set(frame["spec_hash"]) != {expected}:
            raise StaleResultError(f"{run_dir}/{prune_file} was computed from another spec than {expected}")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarise(runs: pd.DataFrame, value: str = "test_accuracy", by: list[str] = GROUP_COLUMNS) -> pd.DataFrame:
    """Mean ± std over converged seeds; ``n_diverged`` counts the seeds left out."""
    converged = runs[~runs["diverged"].astype(bool)]
    stats = converged.groupby(by)[value].agg(mean="mean", std="std", n_converged="count")
    counts = runs.groupby(by).agg(n_seeds=("seed", "nunique"), n_diverged=("diverged", "sum"))
    summary = counts.join(stats, how="left").reset_index()
    summary["n_converged"] = summary["n_converged"].fillna(0).astype(int)
    summary["n_diverged"] = summary["n_diverged"].astype(int)
    return summary


def mean_std_text(mean: float, std: float, n_converged: int, n_seeds: int) -> str:
    if n_converged == 0:
        return f"diverged ({n_seeds}/{n_seeds})"
    text = f"{100 * mean:.1f}" if pd.isna(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"
    return text if n_converged == n_seeds else f"{text} ({n_seeds - n_converged}/{n_seeds} diverged)"


def oneshot_markdown(summary: pd.DataFrame, experiment_info: dict) -> str:
    """Test accuracy (%) by weights remaining (rows) and α (columns)."""
    table = summary.assign(
        cell=[mean_std_text(*values) for values in summary[["mean", "std", "n_converged", "n_seeds"]].itertuples(index=False)],
        weights_remaining=[f"{100 * (1 - s):.2f}%" for s in summary["sparsity"]],
    )
    pivot = table.pivot_table(index=["sparsity", "weights_remaining"], columns="alpha", values="cell", aggfunc="first")
    pivot = pivot.sort_index(ascending=False).droplevel("sparsity")
    pivot.columns = [f"α={alpha:g}" if alpha != 1 else "α=1 (dense baseline)" for alpha in pivot.columns]
    header = (
        f"# {experiment_info['name']}: one-shot magnitude pruning after training\n\n"
        f"{experiment_info.get('description', '').strip()}\n\n"
        f"Dataset: {experiment_info['data']}; training budget: {experiment_info['budget']}.\n"
        "Test accuracy in % (mean ± std over converged seeds); diverged seeds are counted, not averaged.\n\n"
    )
    return header + pivot.to_markdown() + "\n"


def write_oneshot_tables(runs: pd.DataFrame, paths: dict[str, Path], experiment_info: dict) -> str:
    """Write the tidy table, the summary CSV and the Markdown table; returns the Markdown."""
    summary = summarise(runs)
    markdown = oneshot_markdown(summary, experiment_info)
    write_csv_atomic(paths["runs"], runs)
    write_csv_atomic(paths["summary"], summary)
    write_text_atomic(paths["markdown"], markdown)
    return markdown
