"""Report specs: what each pipeline kind writes from its tidy rows (file names in ``bench_powerprop.pipelines``).

A report is the rows it collects (which evaluations), a table writer and a figure writer; a new
pipeline shape adds one ``Report`` here, built from the shared rows, summaries, tables and figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench_powerprop.io import write_csv_atomic, write_text_atomic
from bench_powerprop.pipelines import PIPELINES, first_seed_cells
from bench_powerprop.reporting import adaptive, continual, figures, tables
from bench_powerprop.reporting import published as pub
from bench_powerprop.reporting.pages import html_page
from bench_powerprop.reporting.rows import CONTINUAL_COLUMNS, ONESHOT, ROW_COLUMNS, TASK, TRAINED, collect_rows
from bench_powerprop.reporting.summaries import summarise


@dataclass(frozen=True)
class Report:
    evaluations: tuple[str, ...]
    #: (rows, summary, manifest, published, {role: path}) -> Markdown shown in the log
    write_tables: Callable[..., str]
    #: (rows, manifest, {role: path}) -> None
    write_figures: Callable[..., None]
    #: the columns of its tidy rows (the shared schema, plus documented extra columns)
    columns: list[str] = field(default_factory=lambda: list(ROW_COLUMNS))


def paths(out_dir: Path, files: dict[str, str]) -> dict[str, Path]:
    return {role: Path(out_dir) / name for role, name in files.items()}


def write_all(out: dict[str, Path], outputs: dict) -> None:
    """Write each output to its role's path: a DataFrame as CSV, text as is."""
    for role, content in outputs.items():
        (write_csv_atomic if isinstance(content, pd.DataFrame) else write_text_atomic)(out[role], content)


def title(manifest: dict) -> str:
    return f"{manifest['experiment']} ({manifest['data']})"


# -- one-shot ----------------------------------------------------------------------------------
def oneshot_tables(rows, summary, manifest, published, out) -> str:
    markdown = tables.oneshot_markdown(summary, manifest)
    write_all(out, {"runs": rows, "summary": summary, "markdown": markdown})
    return markdown


def oneshot_figures(rows, manifest, out) -> None:
    figures.save_all(oneshot_figure_set(rows, manifest, out))


def oneshot_figure_set(rows, manifest, out) -> dict:
    """The one-shot figures, drawn but not saved: {path: figure}."""
    from bench_powerprop.powerprop import effective_weights
    from bench_powerprop.training.trainer import load_trained_model

    label = tables.line_key_label(rows)
    magnitudes = {}
    for cell in first_seed_cells(manifest["cells"]):
        model, _ = load_trained_model(Path(cell["run_dir"]) / "model.pt")
        thetas = [theta.numpy() for theta in effective_weights(model).values()]
        magnitudes[label(cell["method"], cell["variant"], cell["sparsity"], cell["alpha"])] = figures.relative_magnitudes(thetas)
    return {
        out["accuracy"]: figures.accuracy_vs_weights_remaining(rows, title(manifest)),
        out["histograms"]: figures.weight_histograms(magnitudes, f"{title(manifest)}: effective weights after training"),
    }


# -- sparse training ---------------------------------------------------------------------------
def sparse_tables(rows, summary, manifest, published, out) -> str:
    dataset, model = manifest["data"], pub.model_key(manifest["model"])
    table = tables.paper_table(summary, published, dataset, model)
    reference = tables.reference_table(published, sorted(rows["method"].unique()), dataset, model)
    markdown = tables.sparse_markdown(table, reference, manifest)
    write_all(out, {"runs": rows, "summary": summary, "paper_csv": table, "markdown": markdown})
    return markdown


def sparse_figures(rows, manifest, out) -> None:
    figures.save_all({out["accuracy"]: figures.sparse_accuracy_vs_sparsity(rows, title(manifest))})


# -- continual learning ------------------------------------------------------------------------
def continual_tables(rows, summary, manifest, published, out) -> str:
    summary = continual.summary_table(rows)
    text = continual.markdown(rows, summary, manifest)
    write_all(out, {"runs": rows, "summary": summary, "matrix": continual.matrix_table(rows), "markdown": text})
    return text


def continual_figures(rows, manifest, out) -> None:
    figures.save_all({
        out["average"]: continual.average_accuracy_figure(rows, title(manifest)),
        out["capacity"]: continual.capacity_figure(rows, title(manifest)),
        out["matrix"]: continual.matrix_figure(rows, title(manifest)),
    })


# -- adaptive α --------------------------------------------------------------------------------
def adaptive_tables(rows, summary, manifest, published, out) -> str:
    trace = adaptive.trace_rows(manifest)
    text = tables.oneshot_markdown(summary, manifest) + "\n" + adaptive.trace_markdown(trace, adaptive.epsilon_text(manifest))
    write_all(out, {"runs": rows, "summary": summary, "markdown": text, "trace": trace})
    return text


def adaptive_figures(rows, manifest, out) -> None:
    trace = adaptive.trace_figure(adaptive.trace_rows(manifest), title(manifest), adaptive.epsilon_text(manifest))
    figures.save_all({**oneshot_figure_set(rows, manifest, out), out["trace"]: trace})


REPORTS = {
    "oneshot": Report((ONESHOT,), oneshot_tables, oneshot_figures),
    "sparse_training": Report((TRAINED,), sparse_tables, sparse_figures),
    "continual": Report((TASK,), continual_tables, continual_figures, ROW_COLUMNS + CONTINUAL_COLUMNS),
    "adaptive_alpha": Report((ONESHOT,), adaptive_tables, adaptive_figures),
}


def write_tables(manifest: dict, out_dir: Path, published_path: str | None = None) -> str:
    kind = manifest["kind"]
    rows = collect_rows(manifest, REPORTS[kind].evaluations)
    summary = summarise(rows)
    out = paths(out_dir, PIPELINES[kind].tables)
    markdown = REPORTS[kind].write_tables(rows, summary, manifest, pub.load_published(published_path), out)
    if "page" in out:
        write_text_atomic(out["page"], html_page(markdown, title(manifest)))
    return markdown


def write_figures(manifest: dict, out_dir: Path) -> None:
    kind = manifest["kind"]
    rows = pd.read_csv(Path(out_dir) / PIPELINES[kind].tables["runs"], usecols=REPORTS[kind].columns)
    REPORTS[kind].write_figures(rows, manifest, paths(out_dir, PIPELINES[kind].figures))
