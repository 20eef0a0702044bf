"""Tables and the figure of a ``sparse_training`` experiment (pipeline shape in workflow/rules/sparse.smk).

* ``sparse_runs.csv``: tidy, one row per trained cell (experiment, method, α, sparsity, seed).
* ``sparse_summary.csv``: mean ± std of test accuracy over converged seeds (``report.summarise``).
* ``sparse_paper_table.{csv,md}``: paper-shaped — rows are methods with and without Powerprop,
  columns are sparsities; published numbers are joined only where ``published_results.csv`` has
  a row for the *same* dataset and model. Published numbers for other datasets/models are listed
  separately, labelled as not comparable, and never subtracted from ours.
* ``sparse_accuracy_vs_sparsity.png``: one panel per method, α=1 vs Powerprop, dense as a line.

Run by the workflow as ``python -m bench_powerprop.sparse_report {aggregate,figure} ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from bench_powerprop.io import read_json, save_figure_atomic, spec_hash, write_csv_atomic, write_text_atomic
from bench_powerprop.report import CELL_COLUMNS, GROUP_COLUMNS, StaleResultError, checked_metrics, summarise

RUN_COLUMNS = [
    *CELL_COLUMNS,
    "test_accuracy",
    "val_accuracy",
    "diverged",
    "diverged_reason",
    "actual_sparsity",
    "training_flops_fraction",
    "steps",
    "spec_hash",
]
PUBLISHED_COLUMNS = ["paper", "dataset", "model", "method", "alpha", "sparsity", "metric", "value", "source"]
PUBLISHED_KEY = ["paper", "dataset", "model", "method", "alpha", "sparsity", "metric"]
DENSE_METHOD = "dense"
NOT_TRANSCRIBED = "not transcribed"
NO_RUN = "—"
DEFAULT_DISTRIBUTION = "erk"  # rigl/set/static default layer densities (bench_powerprop/methods)


# -- tidy runs table ---------------------------------------------------------------------
def cell_spec_of(run_dir: Path, expected_hash: str) -> dict:
    """The spec recorded in run.json, refused unless it hashes to the cell's expected hash."""
    spec = read_json(Path(run_dir) / "run.json")["spec"]
    if spec_hash(spec) != expected_hash:
        raise StaleResultError(f"{run_dir}/run.json describes spec {spec_hash(spec)!r}, not the cell's {expected_hash!r}")
    return spec


def run_row(run_dir: Path, expected_hash: str) -> dict:
    metrics = checked_metrics(run_dir, expected_hash)
    spec = cell_spec_of(run_dir, expected_hash)
    return {
        **{column: spec[column] for column in CELL_COLUMNS},
        "test_accuracy": metrics["test_accuracy"],
        "val_accuracy": metrics["val_accuracy"],
        "diverged": bool(metrics["diverged"]),
        "diverged_reason": metrics.get("diverged_reason"),
        "actual_sparsity": metrics["sparsity"],
        "training_flops_fraction": metrics.get("training_flops_fraction", math.nan),
        "steps": metrics["steps"],
        "spec_hash": metrics["spec_hash"],
    }


def sparse_runs_table(expected_hashes: dict[str, str]) -> pd.DataFrame:
    """One row per cell; every metrics.json must carry the hash of its cell's current spec."""
    rows = [run_row(Path(run_dir), expected) for run_dir, expected in sorted(expected_hashes.items())]
    return pd.DataFrame(rows, columns=RUN_COLUMNS).sort_values(CELL_COLUMNS, ignore_index=True)


def sparse_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """``report.summarise`` plus the mean reached sparsity and training-FLOPs fraction of each group."""
    extras = runs.groupby(GROUP_COLUMNS)[["actual_sparsity", "training_flops_fraction"]].mean()
    extras.columns = [f"mean_{name}" for name in extras.columns]
    return summarise(runs).merge(extras.reset_index(), on=GROUP_COLUMNS, how="left")


# -- published numbers -------------------------------------------------------------------
def load_published(path: str | Path | None) -> pd.DataFrame:
    """The published-results CSV (value numeric, NaN when not transcribed); empty without a path."""
    if not path:
        return pd.DataFrame(columns=PUBLISHED_COLUMNS)
    published = pd.read_csv(path, dtype={"source": str, "paper": str}, keep_default_na=True)
    missing = set(PUBLISHED_COLUMNS) - set(published.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    for column in ("alpha", "sparsity", "value"):
        published[column] = pd.to_numeric(published[column], errors="raise")
    return published


def model_key(model_cfg: dict) -> str:
    """How published_results.csv names a model: ``mlp_300_100`` or the timm arch (``resnet50``)."""
    if model_cfg["name"] == "mlp":
        return "_".join(["mlp", *map(str, model_cfg.get("hidden", [300, 100]))])
    return model_cfg.get("arch", model_cfg["name"])


def published_method(method: str, options: dict) -> str:
    """The name published_results.csv uses for a method as configured here.

    A bare name means the harness's default configuration (e.g. ``rigl`` = ERK layer densities);
    a non-default layer distribution is a suffix (``rigl_uniform``), so an experiment run with
    ``methods: {rigl: {distribution: uniform}}`` is compared with the uniform numbers only.
    """
    distribution = options.get("distribution")
    return f"{method}_{distribution}" if distribution not in (None, DEFAULT_DISTRIBUTION) else method


def is_powerprop(alpha: float) -> bool:
    """α = 1 is the plain method; any other α (or an α not transcribed) is a Powerprop variant."""
    return alpha != 1  # NaN != 1


def matching_published(published: pd.DataFrame, dataset: str, model: str, method: str, alpha: float, sparsity: float) -> pd.DataFrame:
    """Published rows for the same dataset, model, method and sparsity, and the same side of α = 1."""
    same = (
        (published["dataset"] == dataset)
        & (published["model"] == model)
        & (published["method"] == method)
        & published["sparsity"].sub(sparsity).abs().lt(1e-9)
        & (published["alpha"].map(is_powerprop) == is_powerprop(alpha))
    )
    return published[same]


# -- the paper-shaped table --------------------------------------------------------------
# Training FLOPs relative to dense training (RigL paper accounting), mean over seeds.
FLOPS_HEADER = "train FLOPs (× dense)"


def row_label(method: str, alpha: float) -> str:
    return method if alpha == 1 else f"{method} + Powerprop (α={alpha:g})"


def sparsity_label(sparsity: float) -> str:
    return f"{100 * sparsity:g}%" + (" (dense)" if sparsity == 0 else "")


def ours_text(mean: float, std: float, n_converged: int, n_seeds: int) -> str:
    """Test accuracy in %: ``mean ± std (n=…)``; diverged seeds are counted, never averaged."""
    if n_converged == 0:
        return f"diverged ({n_seeds} of {n_seeds})"
    value = f"{100 * mean:.1f}" if pd.isna(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"
    diverged = n_seeds - n_converged
    return f"{value} (n={n_converged}" + (f"; {diverged} of {n_seeds} diverged)" if diverged else ")")


def published_text(rows: pd.DataFrame, our_alpha: float) -> str:
    """Published values with their paper; a Powerprop number with another α than ours says so."""
    values = rows.dropna(subset=["value"])
    if values.empty:
        return NOT_TRANSCRIBED
    return "; ".join(
        f"{row.value:.2f} ({row.paper}" + (f", α={row.alpha:g})" if row.alpha != our_alpha else ")")
        for row in values.itertuples()
    )


def difference_text(our_mean: float, rows: pd.DataFrame) -> str:
    values = rows.dropna(subset=["value"])
    if values.empty or pd.isna(our_mean):
        return NO_RUN
    return "; ".join(f"{100 * our_mean - row.value:+.2f} pp" for row in values.itertuples())


def ordered_rows(summary: pd.DataFrame) -> list[tuple[str, float]]:
    """(method, α) pairs: dense first, then methods in grid order, α ascending within a method."""
    pairs = summary[["method", "alpha"]].drop_duplicates()
    methods = list(dict.fromkeys(pairs["method"]))
    methods.sort(key=lambda name: name != DENSE_METHOD)
    return [(method, alpha) for method in methods for alpha in sorted(pairs.loc[pairs["method"] == method, "alpha"])]


def paper_table(summary: pd.DataFrame, published: pd.DataFrame, dataset: str, model: str,
                method_options: dict | None = None) -> pd.DataFrame:
    """Rows method ± Powerprop; per sparsity: ours, published (same dataset and model), ours − published."""
    method_options = method_options or {}
    sparsities = sorted(summary["sparsity"].unique())
    published_header = f"published ({dataset}, {model})"
    table = []
    for method, alpha in ordered_rows(summary):
        row = {"method": method, "alpha": alpha, "row": row_label(method, alpha)}
        for sparsity in sparsities:
            label = sparsity_label(sparsity)
            cell = summary[(summary["method"] == method) & (summary["alpha"] == alpha) & (summary["sparsity"] == sparsity)]
            if cell.empty:
                row.update({f"{label} ours": NO_RUN, f"{label} {FLOPS_HEADER}": NO_RUN,
                            f"{label} {published_header}": NO_RUN, f"{label} ours − published": NO_RUN})
                continue
            stats = cell.iloc[0]
            name = published_method(method, method_options.get(method, {}))
            matches = matching_published(published, dataset, model, name, alpha, sparsity)
            row[f"{label} ours"] = ours_text(stats["mean"], stats["std"], stats["n_converged"], stats["n_seeds"])
            row[f"{label} {FLOPS_HEADER}"] = f"{stats['mean_training_flops_fraction']:.3f}"
            row[f"{label} {published_header}"] = published_text(matches, alpha)
            row[f"{label} ours − published"] = difference_text(stats["mean"], matches)
        table.append(row)
    return pd.DataFrame(table)


def reference_table(published: pd.DataFrame, methods: list[str], dataset: str, model: str) -> pd.DataFrame:
    """Published numbers for our methods on *other* datasets/models: context only, not comparable."""
    related = published["method"].map(lambda name: any(name == m or name.startswith(f"{m}_") for m in methods))
    other = published[related & ~((published["dataset"] == dataset) & (published["model"] == model))]
    if other.empty:
        return pd.DataFrame()
    other = other.assign(
        setting=other["dataset"] + " / " + other["model"],
        row=[row_label(method, alpha) if not pd.isna(alpha) else f"{method} + Powerprop (α not transcribed)"
             for method, alpha in zip(other["method"], other["alpha"])],
        column=other["sparsity"].map(sparsity_label),
        text=[NOT_TRANSCRIBED if pd.isna(value) else f"{value:.2f}" for value in other["value"]],
    )
    pivot = other.pivot_table(index=["setting", "paper", "row"], columns="column", values="text",
                              aggfunc=" / ".join, fill_value=NO_RUN)
    order = sorted(pivot.columns, key=lambda label: float(label.split("%")[0]))
    return pivot[order].reset_index().rename(columns={"setting": "dataset / model", "row": "method"})


def budget_text(info: dict) -> str:
    train = info.get("train", {})
    optimiser = train.get("optimizer", "sgd").upper() if train.get("optimizer", "sgd") == "sgd" else train["optimizer"]
    momentum = f", momentum {train['momentum']:g}" if train.get("momentum") else ""
    schedule = train.get("lr_schedule", "constant")
    return (f"{train.get('steps', '?')} steps of batch {train.get('batch_size', '?')}, "
            f"{optimiser} lr {train.get('lr', '?')}{momentum}, {schedule} schedule")


def published_column_pairs(table: pd.DataFrame) -> dict[str, list[str]]:
    """Per sparsity label, its ``published …`` and ``ours − published`` column names."""
    pairs: dict[str, list[str]] = {}
    for column in table.columns:
        if " published" in column:
            pairs.setdefault(column.split(" ", 1)[0] if "(dense)" not in column else "0% (dense)", []).append(column)
    return pairs


def without_empty_published_columns(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop published/difference column pairs in which no row has a published number (Markdown only)."""
    empty = []
    for label, columns in published_column_pairs(table).items():
        published = [column for column in columns if "ours − published" not in column]
        if table[published].isin([NOT_TRANSCRIBED, NO_RUN]).all(axis=None):
            table = table.drop(columns=columns)
            empty.append(label)
    return table, empty


def options_text(info: dict) -> str:
    options = {method: values for method, values in info.get("methods", {}).items() if values}
    configured = "; ".join(f"{method}: {json.dumps(values, sort_keys=True)}" for method, values in sorted(options.items()))
    return (f"Method options: {configured}; all others " if configured else "Method options: ") + (
        "the defaults of `bench_powerprop/methods` (rigl/set/static: ERK layer densities; gmp: layerwise; "
        "topkast: uniform)."
    )


def paper_markdown(table: pd.DataFrame, reference: pd.DataFrame, info: dict) -> str:
    dataset, model = info["data"], info["model_key"]
    shown, empty = without_empty_published_columns(table)
    header = (
        f"# {info['name']}: sparse training, ours vs published\n\n"
        f"{info.get('description', '').strip()}\n\n"
        f"**Our runs: dataset {dataset}, model {model}, training budget {budget_text(info)}** "
        "(same budget for every method; sparsity = fraction of Linear/Conv weights that are zero at the end). "
        f"{options_text(info)}\n\n"
        f"Cells: test accuracy in % — mean ± std over converged seeds (n = converged seeds); diverged seeds are "
        f"counted, never averaged. \"{FLOPS_HEADER}\": training FLOPs relative to dense training of the same model "
        "(forward/backward under the masks, plus RigL's dense-gradient steps; RigL paper accounting). "
        f"\"published ({dataset}, {model})\" columns hold only numbers published for this "
        f"same dataset and model (from `published_results.csv`); \"{NOT_TRANSCRIBED}\" means there is no such row. "
        "Differences are ours − published in percentage points.\n\n"
    )
    if empty:
        header += (
            f"No published number for {dataset} / {model} exists at sparsity {', '.join(empty)}, so those published "
            f"and difference columns are left out here (`sparse_paper_table.csv` has them, reading \"{NOT_TRANSCRIBED}\").\n\n"
        )
    body = shown.drop(columns=["method", "alpha"]).set_index("row").to_markdown() + "\n"
    if reference.empty:
        return header + body
    reference_header = (
        "\n## Published reference numbers for other datasets/models — NOT comparable\n\n"
        f"Top-1 accuracies (%) from the cited papers in the settings named in the first column "
        f"(ImageNet / ResNet-50: ~100 epochs of ImageNet). Our numbers above are for {dataset} / {model} with "
        f"{budget_text(info)}: a {dataset} accuracy says nothing about an ImageNet accuracy, so no difference is "
        "computed. Exact sources (table or file, commit) are in `configs/published_results.csv`.\n\n"
    )
    return header + body + reference_header + reference.to_markdown(index=False) + "\n"


def write_sparse_tables(runs: pd.DataFrame, published: pd.DataFrame, paths: dict[str, Path], info: dict) -> str:
    """Write runs, summary and paper table (CSV + Markdown) atomically; returns the Markdown."""
    info = {**info, "model_key": model_key(info["model"])}
    summary = sparse_summary(runs)
    dataset, model = info["data"], info["model_key"]
    table = paper_table(summary, published, dataset, model, info.get("methods", {}))
    reference = reference_table(published, sorted(runs["method"].unique()), dataset, model)
    markdown = paper_markdown(table, reference, info)
    write_csv_atomic(paths["runs"], runs)
    write_csv_atomic(paths["summary"], summary)
    write_csv_atomic(paths["paper_csv"], table)
    write_text_atomic(paths["paper_md"], markdown)
    return markdown


# -- figure ------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_label(alpha: float, group: pd.DataFrame) -> str:
    label = "α=1 (no Powerprop)" if alpha == 1 else f"Powerprop α={alpha:g}"
    diverged = int(group["diverged"].astype(bool).sum())
    return label if diverged == 0 else f"{label} — {diverged} of {len(group)} runs diverged (left out)"


def plot_alpha_line(axis, group: pd.DataFrame, colour, alpha: float) -> None:
    """Mean over converged seeds with a min–max seed band; diverged seeds only counted in the label."""
    converged = group[~group["diverged"].astype(bool)]
    label = line_label(alpha, group)
    if converged.empty:
        axis.plot([], [], color=colour, label=f"{label} (no converged run)")
        return
    stats = converged.groupby("sparsity")["test_accuracy"].agg(["mean", "min", "max"])
    axis.plot(100 * stats.index, stats["mean"], color=colour, marker="o", markersize=3, label=label)
    axis.fill_between(100 * stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)


def plot_dense_lines(axis, dense: pd.DataFrame, colours: dict) -> None:
    for alpha, group in dense.groupby("alpha"):
        converged = group[~group["diverged"].astype(bool)]
        label = f"dense, {line_label(alpha, group)}"
        if converged.empty:
            axis.plot([], [], color="grey", label=f"{label} (no converged run)")
            continue
        axis.axhline(converged["test_accuracy"].mean(), color=colours[alpha], linestyle="--", linewidth=1, label=label)


def sparse_accuracy_figure(runs: pd.DataFrame, path: Path, title: str) -> None:
    plt = _pyplot()
    methods = [method for method in dict.fromkeys(runs["method"]) if method != DENSE_METHOD]
    alphas = sorted(runs["alpha"].unique())
    colours = dict(zip(alphas, plt.get_cmap("tab10")(range(len(alphas)))))
    dense = runs[runs["method"] == DENSE_METHOD]
    figure, axes = plt.subplots(1, max(1, len(methods)), figsize=(4 * max(1, len(methods)), 4), sharey=True, squeeze=False)
    for axis, method in zip(axes[0], methods or [DENSE_METHOD]):
        for alpha, group in runs[runs["method"] == method].groupby("alpha"):
            if method != DENSE_METHOD:
                plot_alpha_line(axis, group, colours[alpha], alpha)
        plot_dense_lines(axis, dense, colours)
        axis.set_title(method)
        axis.set_xticks(sorted(100 * runs.loc[runs["method"] != DENSE_METHOD, "sparsity"].unique()))
        axis.set_xlabel("sparsity (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("test accuracy")
    figure.suptitle(f"{title}: line = mean over converged seeds, band = min–max over seeds, dashed = dense", fontsize=10)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=150)
    plt.close(figure)


# -- command line (the workflow's entry points) ------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench_powerprop.sparse_report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    aggregate = commands.add_parser("aggregate", help="tidy, summary and paper tables of a sparse_training experiment")
    aggregate.add_argument("--expected", type=json.loads, required=True, help="JSON {run_dir: spec_hash} of every cell")
    aggregate.add_argument("--experiment-info", type=json.loads, required=True)
    aggregate.add_argument("--published", default="", help="published_results.csv (empty: none)")
    for name in ("runs-out", "summary-out", "paper-csv-out", "paper-md-out"):
        aggregate.add_argument(f"--{name}", type=Path, required=True)
    figure = commands.add_parser("figure", help="accuracy vs sparsity, one panel per method")
    figure.add_argument("--runs", type=Path, required=True, help="the tidy sparse_runs.csv")
    figure.add_argument("--title", required=True)
    figure.add_argument("--out", type=Path, required=True)
    return parser


def run_aggregate(args) -> int:
    paths = {"runs": args.runs_out, "summary": args.summary_out, "paper_csv": args.paper_csv_out, "paper_md": args.paper_md_out}
    runs = sparse_runs_table(args.expected)
    print(write_sparse_tables(runs, load_published(args.published), paths, args.experiment_info))
    return 0


def run_figure(args) -> int:
    sparse_accuracy_figure(pd.read_csv(args.runs), args.out, args.title)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return {"aggregate": run_aggregate, "figure": run_figure}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
