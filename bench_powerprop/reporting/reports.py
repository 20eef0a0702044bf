"""The table and figure writers of the pipeline kinds, built from the shared rows, summaries, tables and figures.

A kind (``bench_powerprop/kinds/<kind>.py``) names its writers here (or anywhere) by ``"module:function"``, with
the evaluations its rows collect and its table titles; a new kind may reuse these writers under its own titles.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.io import write_csv_atomic, write_text_atomic
from bench_powerprop.methods import METHODS
from bench_powerprop.pipelines import PIPELINES, first_seed_cells, resolve
from bench_powerprop.reporting import adaptive, continual, figures, tables
from bench_powerprop.reporting import published as pub
from bench_powerprop.reporting.labels import method_label
from bench_powerprop.reporting.pages import html_page
from bench_powerprop.reporting.rows import ROW_COLUMNS, collect_rows, read_table, structured_rows
from bench_powerprop.reporting.summaries import summarise
from bench_powerprop.training.progress import GRADIENT_NORM_COLUMNS


def paths(out_dir: Path, files: dict[str, str]) -> dict[str, Path]:
    return {role: Path(out_dir) / name for role, name in files.items()}


def write_all(out: dict[str, Path], outputs: dict) -> None:
    """Write each output to its role's path: a DataFrame as CSV, text as is."""
    for role, content in outputs.items():
        (write_csv_atomic if isinstance(content, pd.DataFrame) else write_text_atomic)(out[role], content)


def title(manifest: dict) -> str:
    return f"{manifest['experiment']} ({manifest['data']})"


# -- one-shot ----------------------------------------------------------------------------------
def oneshot_tables(rows, summary, manifest, published, out, titles) -> str:
    structured = structured_rows(manifest)
    markdown = tables.oneshot_markdown(summary, manifest, titles["markdown"]) + tables.structured_markdown(structured)
    write_all(out, {"runs": rows, "summary": summary, "markdown": markdown, "structured": structured})
    return markdown


def oneshot_figures(rows, manifest, out) -> None:
    figures.save_all(oneshot_figure_set(rows, manifest, out))


def oneshot_figure_set(rows, manifest, out) -> dict:
    """The one-shot figures, drawn but not saved: {path: figure}."""
    from bench_powerprop.powerprop import effective_weights
    from bench_powerprop.training.checkpointing import load_trained_model

    label = tables.line_key_label(rows)
    styles = figures.configuration_styles([tuple(key) for key in rows[figures.LINE_KEYS].drop_duplicates()
                                           .sort_values(figures.LINE_KEYS).itertuples(index=False)])
    magnitudes, layer_thetas, colours = {}, {}, {}
    for cell in first_seed_cells(manifest["cells"]):
        model, _ = load_trained_model(Path(cell["run_dir"]) / "model.pt")
        axes = tuple(cell[key] for key in figures.LINE_KEYS)
        key = label(*axes)
        colours[key] = styles[axes]["colour"] if axes in styles else None
        layer_thetas[key] = {name: theta.numpy() for name, theta in effective_weights(model).items()}
        magnitudes[key] = figures.relative_magnitudes(list(layer_thetas[key].values()))
    colours = colours if all(colour is not None for colour in colours.values()) else None
    drawn = {
        out["accuracy"]: figures.accuracy_vs_weights_remaining(rows, title(manifest)),
        out["histograms"]: figures.weight_histograms(magnitudes, f"{title(manifest)}: effective weights after training", colours),
    }
    if "layer_histograms" in out:
        drawn[out["layer_histograms"]] = figures.per_layer_weight_histograms(layer_thetas, f"{title(manifest)}: effective weights "
                                                                            "after training, per layer", colours)
    return drawn


# -- sparse training ---------------------------------------------------------------------------
def sparse_tables(rows, summary, manifest, published, out, titles) -> str:
    dataset, model = manifest["data"], pub.model_key(manifest["model"])
    table = tables.paper_table(summary, published, dataset, model)
    reference = tables.reference_table(published, sorted(rows["method"].unique()), dataset, model)
    markdown = tables.sparse_markdown(table, reference, manifest, titles["markdown"])
    write_all(out, {"runs": rows, "summary": summary, "paper_csv": table, "markdown": markdown})
    return markdown


def sparse_figures(rows, manifest, out) -> None:
    figures.save_all({out["accuracy"]: figures.sparse_accuracy_vs_sparsity(rows, title(manifest))})


# -- continual learning ------------------------------------------------------------------------
def continual_tables(rows, summary, manifest, published, out, titles) -> str:
    summary = continual.summary_table(rows)
    text = continual.markdown(rows, summary, manifest, titles["markdown"])
    write_all(out, {"runs": rows, "summary": summary, "matrix": continual.matrix_table(rows), "markdown": text})
    return text


def continual_figures(rows, manifest, out) -> None:
    figures.save_all({
        out["average"]: continual.average_accuracy_figure(rows, title(manifest)),
        out["capacity"]: continual.capacity_figure(rows, title(manifest)),
        out["matrix"]: continual.matrix_figure(rows, title(manifest)),
    })


# -- adaptive α --------------------------------------------------------------------------------
def adaptive_tables(rows, summary, manifest, published, out, titles) -> str:
    trace = adaptive.trace_rows(manifest)
    text = (tables.oneshot_markdown(summary, manifest, titles["markdown"]) + "\n"
            + adaptive.trace_markdown(trace, adaptive.epsilon_text(manifest)))
    write_all(out, {"runs": rows, "summary": summary, "markdown": text, "trace": trace})
    return text


def adaptive_figures(rows, manifest, out) -> None:
    trace = adaptive.trace_figure(adaptive.trace_rows(manifest), title(manifest), adaptive.epsilon_text(manifest))
    figures.save_all({**oneshot_figure_set(rows, manifest, out), out["trace"]: trace})


# -- options and labels of the sparse-from-the-start reports -------------------------------------
def method_options(manifest: dict, method: str, variant: str) -> dict:
    """A method's options in this experiment (config, variant, defaults filled in: what the plan parsed)."""
    return manifest["method_options"][method][variant]


def sparse_from_start_labels(manifest: dict):
    """Legend and table words: a cell by its method's ``report_label`` of its options (a pai cell by its scorer and
    init, a lottery cell by ticket / control and rewind step), else by its method and variant."""

    def label(method: str, variant: str) -> str:
        own = variant in manifest["method_options"].get(method, {})  # a reference experiment's method: its plain label
        text = METHODS.get(method).report_label(method_options(manifest, method, variant)) if own else None
        return text or method_label(method, variant)

    return label


# -- pruning at initialisation -----------------------------------------------------------------
def reference_rows(manifest: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """The reference experiment's rows of the declared methods at our α (and sparsities, dense included)."""
    reference = manifest.get("reference") or {}
    if not reference.get("runs"):
        return pd.DataFrame(columns=ROW_COLUMNS)
    theirs = read_table(reference["runs"], usecols=ROW_COLUMNS)
    wanted = theirs["method"].isin(reference["methods"]) & theirs["alpha"].isin(rows["alpha"].unique())
    wanted &= theirs["sparsity"].isin([0.0, *rows["sparsity"].unique()])
    return theirs[wanted]


def reference_note(manifest: dict, reference: pd.DataFrame) -> str:
    declared = manifest.get("reference")
    if not declared:
        return ""
    if reference.empty:
        return (f"Reference rows ({', '.join(declared['methods'])}) would come from experiment {declared['experiment']!r}, "
                "which is not active in this run.")
    return (f"Rows {', '.join(sorted(reference['method'].unique()))} are from experiment {declared['experiment']!r} "
            "(same data, model and training budget, checked when the config is read).")


def pai_tables(rows, summary, manifest, published, out, titles) -> str:
    dataset, model = manifest["data"], pub.model_key(manifest["model"])
    reference = reference_rows(manifest, rows)
    both = summarise(pd.concat([rows, reference], ignore_index=True)) if not reference.empty else summary
    table = tables.paper_table(both, published, dataset, model)
    label = sparse_from_start_labels(manifest)
    scorers = sorted({method_options(manifest, "pai", variant)["scorer"] for variant in rows.loc[rows["method"] == "pai", "variant"]})
    methods = [*scorers, *sorted(set(reference["method"]) - {"dense"})]
    nearby = tables.nearest_published(published, methods, dataset, model, sorted(rows["sparsity"].unique()))
    notes = " ".join(part for part in (
        "Rows `pai [variant]`: " + "; ".join(f"{variant} = {label('pai', variant)}" for variant in sorted(set(rows["variant"]))) + ".",
        reference_note(manifest, reference),
        "Published numbers below are for other datasets and models, at the published sparsity nearest to each of ours.",
    ) if part)
    markdown = tables.sparse_markdown(table, tables.reference_table(nearby, methods, dataset, model), manifest,
                                      titles["markdown"], notes=notes)
    write_all(out, {"runs": rows, "summary": summary, "markdown": markdown})
    return markdown


def pai_figures(rows, manifest, out) -> None:
    label = sparse_from_start_labels(manifest)
    scorers = {variant: method_options(manifest, "pai", variant)["scorer"] for variant in set(rows.loc[rows["method"] == "pai", "variant"])}
    curves = pub.load_curves(manifest.get("published_curves"))
    ours = curves[curves["method"].isin(set(scorers.values()))]
    figure = figures.pai_accuracy_vs_weights_remaining(rows, reference_rows(manifest, rows), label, scorers, ours, title(manifest))
    figures.save_all({out["accuracy"]: figure})


# -- lottery tickets ---------------------------------------------------------------------------
def lottery_tables(rows, summary, manifest, published, out, titles) -> str:
    markdown = tables.lottery_markdown(summary, manifest, sparse_from_start_labels(manifest), titles["markdown"])
    write_all(out, {"runs": rows, "summary": summary, "markdown": markdown})
    return markdown


def lottery_figures(rows, manifest, out) -> None:
    figures.save_all({out["accuracy"]: figures.lottery_ticket_vs_controls(rows, sparse_from_start_labels(manifest), title(manifest))})


# -- gradient flow -----------------------------------------------------------------------------
def gradient_norm_rows(manifest: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """Every probe of every cell (``gradient_norms.csv``) with the cell's columns and training status."""
    status = dict(zip(rows["spec_hash"], rows["status"]))
    frames = []
    for cell in manifest["cells"]:
        norms = pd.read_csv(Path(cell["run_dir"]) / "gradient_norms.csv")
        frames.append(norms.assign(**{column: cell.get(column) for column in CELL_COLUMNS}, status=status[cell["spec_hash"]]))
    columns = [*CELL_COLUMNS, "status", *GRADIENT_NORM_COLUMNS]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def gradflow_tables(rows, summary, manifest, published, out, titles) -> str:
    norms = gradient_norm_rows(manifest, rows)
    markdown = tables.gradflow_markdown(tables.gradflow_table(summary, norms, sparse_from_start_labels(manifest)), manifest,
                                        titles["markdown"])
    write_all(out, {"runs": rows, "summary": summary, "norms": norms, "markdown": markdown})
    return markdown


def gradflow_figures(rows, manifest, out) -> None:
    figure = figures.gradient_norm_vs_step(gradient_norm_rows(manifest, rows), sparse_from_start_labels(manifest), title(manifest))
    figures.save_all({out["gradient_norm"]: figure})


def row_columns(kind: str) -> list[str]:
    """The columns of a kind's tidy rows: the shared schema, plus its declared extra columns."""
    extra = PIPELINES[kind].extra_columns
    return ROW_COLUMNS + (resolve(extra) if extra else [])


def write_tables(manifest: dict, out_dir: Path, published_path: str | None = None) -> str:
    pipeline = PIPELINES[manifest["kind"]]
    rows = collect_rows(manifest, pipeline.evaluations)
    summary = summarise(rows)
    out = paths(out_dir, pipeline.tables)
    markdown = resolve(pipeline.tables_writer)(rows, summary, manifest, pub.load_published(published_path), out, pipeline.titles)
    if "page" in out:
        write_text_atomic(out["page"], html_page(markdown, title(manifest)))
    return markdown


def write_solutions(manifest: dict, out_dir: Path) -> None:
    """The lottery kind's solution-distance and ensemble tables (``bench_powerprop.reporting.lottery``)."""
    from bench_powerprop.reporting import lottery

    lottery.write_solution_tables(manifest, paths(out_dir, PIPELINES[manifest["kind"]].tables))


def write_figures(manifest: dict, out_dir: Path, published_curves: str = "") -> None:
    """``published_curves``: the per-run published curves a figure may draw as context (the PAI figure)."""
    pipeline = PIPELINES[manifest["kind"]]
    rows = read_table(Path(out_dir) / pipeline.tables["runs"], usecols=row_columns(pipeline.kind))
    manifest, out = {**manifest, "published_curves": published_curves}, paths(out_dir, pipeline.figures)
    extra = dict(pipeline.extra_figures)
    resolve(pipeline.figures_writer)(rows, manifest, {role: path for role, path in out.items() if role not in extra})
    figures.save_all({out[role]: resolve(draw)(rows, manifest) for role, draw in extra.items()})
