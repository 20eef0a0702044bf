"""The ``adaptive_alpha`` kind: the one-shot report of every cell, plus α and the fraction |θ| < ε over training.

The trace comes from each cell's ``metrics.json`` (``alpha_trace``, written by the ``adaptive_alpha``
method, fixed-α cells included): one row per measurement, every K epochs from the initial model.
"""

from __future__ import annotations

import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.reporting.continual import CONFIG, of_configuration
from bench_powerprop.reporting.figures import _pyplot, figure_title
from bench_powerprop.reporting.labels import alpha_colour, alpha_label
from bench_powerprop.reporting.pages import markdown_table
from bench_powerprop.reporting.rows import DIVERGED, OK, checked_metrics

TRACE_COLUMNS = [*CELL_COLUMNS, "step", "epoch", "fraction_below_epsilon", "alpha_now", "next_alpha", "diverged", "status", "final"]


def trace_rows(manifest: dict) -> pd.DataFrame:
    """One row per measurement of every cell: α in use (``alpha_now``), the fraction |θ| < ε, the α chosen next.

    ``alpha`` and ``sparsity`` are the cell's axes (for adaptive cells ``alpha`` is the starting α);
    ``status`` is the run's (``diverged`` or ``ok``), ``final`` marks its last measurement."""
    rows = []
    for cell in manifest["cells"]:
        metrics = checked_metrics(cell["run_dir"], cell["spec_hash"])
        trace = metrics.get("alpha_trace", [])
        status = DIVERGED if metrics["diverged"] else OK
        for index, entry in enumerate(trace):
            rows.append({**{column: cell.get(column) for column in CELL_COLUMNS}, "step": entry["step"], "epoch": entry["epoch"],
                         "fraction_below_epsilon": entry["sparsity"], "alpha_now": entry["alpha"], "next_alpha": entry["next_alpha"],
                         "diverged": metrics["diverged"], "status": status, "final": index == len(trace) - 1})
    return pd.DataFrame(rows, columns=TRACE_COLUMNS).sort_values([*CELL_COLUMNS, "step"], ignore_index=True)


def configuration_label(method: str, variant: str, alpha: float, adaptive: bool) -> str:
    if adaptive:
        return f"adaptive α from {alpha:g}" + ("" if variant == "default" else f" [{variant}]")
    return f"fixed {alpha_label(alpha)}" + ("" if method == "adaptive_alpha" else f" ({method})")


def adaptive_cells(trace: pd.DataFrame) -> set[tuple]:
    """Configurations whose α changed at least once in some seed."""
    changed = trace[trace["next_alpha"] != trace["alpha_now"]]
    return {tuple(key) for key in changed[CONFIG].drop_duplicates().itertuples(index=False)}


def trace_markdown(trace: pd.DataFrame, epsilon_text: str) -> str:
    """Per configuration: α at the end (mean, range over seeds), |θ| < ε at the start and end, diverged seeds."""
    adaptive = adaptive_cells(trace)
    last = trace.sort_values("step").groupby([*CONFIG, "seed"]).tail(1)
    first = trace.sort_values("step").groupby([*CONFIG, "seed"]).head(1)
    records = []
    for key, group in last.groupby(CONFIG, sort=True):
        start = of_configuration(first, key)
        records.append({
            "configuration": configuration_label(*key, key in adaptive),
            "final α (mean, range)": f"{group['next_alpha'].mean():.2f} ({group['next_alpha'].min():.2f}–{group['next_alpha'].max():.2f})",
            f"|θ| < {epsilon_text} at start (%)": f"{100 * start['fraction_below_epsilon'].mean():.2f}",
            f"|θ| < {epsilon_text} at end (%)": f"{100 * group['fraction_below_epsilon'].mean():.2f}",
            "seeds diverged": f"{int(group['diverged'].sum())}/{len(group)}",
        })
    header = ("## α and the fraction of effective weights below ε over training\n\n"
              "Measured every K epochs by the adaptive_alpha method (fixed-α cells: `adapt: false`, same measurement). "
              "For adaptive cells the α column of the tables above is the starting α.\n")
    return header + "\n" + markdown_table(pd.DataFrame(records)) + "\n"


def trace_figure(trace: pd.DataFrame, title: str, epsilon_text: str):
    """Left: α against epoch; right: fraction |θ| < ε against epoch. Line = mean over seeds, band = min–max."""
    plt = _pyplot()
    adaptive = adaptive_cells(trace)
    keys = [tuple(key) for key in trace[CONFIG].drop_duplicates().sort_values(CONFIG).itertuples(index=False)]
    colours = {key: alpha_colour(key[2]) for key in keys}  # α's colour everywhere; adaptive solid, fixed dashed
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in keys:
        group = of_configuration(trace, key)
        label = configuration_label(*key, key in adaptive)
        if group["diverged"].any():
            label += f" ({group.loc[group['diverged'], 'seed'].nunique()}/{group['seed'].nunique()} diverged)"
        for axis, column, scale in ((axes[0], "next_alpha", 1.0), (axes[1], "fraction_below_epsilon", 100.0)):
            stats = group.groupby("epoch")[column].agg(["mean", "min", "max"])
            axis.plot(stats.index, scale * stats["mean"], color=colours[key], label=label,
                      linestyle="-" if key in adaptive else "--", marker="o", markersize=2)
            axis.fill_between(stats.index, scale * stats["min"], scale * stats["max"], color=colours[key], alpha=0.2)
    axes[0].set_ylabel("α (after each update)")
    axes[1].set_ylabel(f"% of effective weights with |θ| < {epsilon_text}")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    figure_title(figure, f"{title}: adaptive vs fixed α")
    figure.tight_layout()
    return figure


def epsilon_text(manifest: dict) -> str:
    epsilons = {options.get("epsilon") for options in [manifest["methods"].get("adaptive_alpha", {}),
                                                        *manifest["variants"].get("adaptive_alpha", {}).values()]}
    epsilons.discard(None)
    if len(epsilons) > 1:
        return "ε"
    from bench_powerprop.methods import METHODS

    return f"{epsilons.pop() if epsilons else METHODS.options('adaptive_alpha')().epsilon:g}"
