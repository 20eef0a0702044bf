"""Tables and figures of the ``continual`` kind, from its tidy ``task`` rows (``rows.CONTINUAL_COLUMNS``).

* average test accuracy over the tasks seen, by number of tasks learnt (the continual-learning
  curve of Schwarz et al. 2021 §5): per run, the mean over tasks 1..t of each task's accuracy with
  its own mask after t tasks; then mean ± std over seeds;
* the capacity each task used (its mask), claimed (new weights) and the total used so far;
* the task × task accuracy matrix (row: tasks learnt, column: task evaluated), mean over seeds.

An average over tasks counts as ``diverged`` when any of its tasks diverged, ``collapsed`` when
every one of them is at chance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.reporting.figures import _pyplot, figure_title, line_label, plot_line
from bench_powerprop.reporting.labels import STATUS_LEGEND, accuracy_text, alpha_colour
from bench_powerprop.reporting.rows import COLLAPSED, DIVERGED, OK
from bench_powerprop.reporting.summaries import MEAN_COLUMNS, stat_columns, summarise
from bench_powerprop.reporting.tables import row_label, setting_text

CONFIG = ["method", "variant", "alpha"]
SUMMARY_BY = [column for column in CELL_COLUMNS if column != "seed"] + ["evaluation", "trained_tasks"]
MATRIX_BY = [*SUMMARY_BY, "evaluated_task"]
#: a task "fits" when its test accuracy after the whole sequence is at least this
FIT_ACCURACY = 0.9


def average_status(statuses: pd.Series) -> str:
    if (statuses == DIVERGED).any():
        return DIVERGED
    return COLLAPSED if (statuses == COLLAPSED).all() else OK


def average_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per run and number of tasks learnt: mean accuracy over the tasks seen, its capacity used, its status."""
    grouped = rows.groupby([*CELL_COLUMNS, "evaluation", "trained_tasks"], sort=True, dropna=False)  # level is empty
    averages = grouped.agg(test_accuracy=("test_accuracy", "mean"), val_accuracy=("val_accuracy", "mean"),
                           capacity_total=("capacity_total", "first"), status=("status", average_status),
                           **{column: (column, "mean") for column in MEAN_COLUMNS}).reset_index()
    averages.loc[averages["status"] == DIVERGED, ["test_accuracy", "val_accuracy"]] = np.nan
    return averages


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Average accuracy over the tasks seen: mean ± std over seeds per configuration and number of tasks learnt."""
    averages = average_rows(rows)
    included = averages[averages["status"] != DIVERGED]
    capacity = included.groupby(SUMMARY_BY, dropna=False)["capacity_total"].mean().rename("mean_capacity_total")
    return summarise(averages, by=SUMMARY_BY).join(capacity, on=SUMMARY_BY)


def matrix_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Each (tasks learnt, task evaluated) entry: mean ± std over seeds of the task's test accuracy with its own mask."""
    means = rows[rows["status"] != DIVERGED].groupby(MATRIX_BY, dropna=False)[["capacity", "capacity_new"]].mean().add_prefix("mean_")
    return summarise(rows, by=MATRIX_BY).join(means, on=MATRIX_BY)


def of_configuration(frame: pd.DataFrame, key: tuple) -> pd.DataFrame:
    """The rows of ``frame`` with (method, variant, α) equal to ``key``."""
    return frame[(frame[CONFIG] == pd.Series(key, index=CONFIG)).all(axis=1)]


def configurations(frame: pd.DataFrame) -> list[tuple]:
    """(method, variant, α) in a stable order: method, variant, then α."""
    return [tuple(key) for key in frame[CONFIG].drop_duplicates().sort_values(CONFIG).itertuples(index=False)]


def by_configuration(frame: pd.DataFrame, index: str, text) -> pd.DataFrame:
    """Rows ``index``, one column per configuration, cells ``text(row)``."""
    table = frame.assign(column=[row_label(*key) for key in frame[CONFIG].itertuples(index=False)],
                         text=[text(row) for _, row in frame.iterrows()])
    columns = [row_label(*key) for key in configurations(frame)]
    return table.pivot_table(index=index, columns="column", values="text", aggfunc="first")[columns].rename_axis(None, axis=1)


def fit_counts(rows: pd.DataFrame, tasks: int) -> pd.DataFrame:
    """Per configuration: over seeds, how many tasks hold >= FIT_ACCURACY after the last task, and the capacity used."""
    last = rows[rows["trained_tasks"] == tasks]
    per_seed = last.groupby([*CONFIG, "seed"]).agg(fit=("test_accuracy", lambda accuracy: int((accuracy >= FIT_ACCURACY).sum())),
                                                   capacity=("capacity_total", "first")).reset_index()
    summary = per_seed.groupby(CONFIG).agg(fit_mean=("fit", "mean"), fit_min=("fit", "min"), fit_max=("fit", "max"),
                                           capacity=("capacity", "mean")).reset_index()
    return pd.DataFrame({
        "configuration": [row_label(*key) for key in summary[CONFIG].itertuples(index=False)],
        f"tasks ≥ {100 * FIT_ACCURACY:g}% after all {tasks} (mean, range over seeds)":
            [f"{row.fit_mean:.1f} ({row.fit_min}–{row.fit_max})" for row in summary.itertuples()],
        "weights used (%)": [f"{100 * value:.1f}" for value in summary["capacity"]],
    })


def sequence_text(manifest: dict) -> str:
    data = manifest.get("data_config") or {}
    if data.get("name") != "permuted":
        return ""
    first = "task 1 unpermuted" if data["identity_first"] else "every task permuted"
    return (f"Tasks: {data['tasks']} permutations of {data['base']['name']} (seed {data['permutation_seed']}, {first}); "
            f"`train.steps` = {manifest['train']['steps']} steps per task. ")


def markdown(rows: pd.DataFrame, summary: pd.DataFrame, manifest: dict, heading: str) -> str:
    tasks = int(rows["trained_tasks"].max())
    average = by_configuration(summary, "trained_tasks", lambda row: accuracy_text(*stat_columns(row)))
    capacity = by_configuration(summary, "trained_tasks", lambda row: f"{100 * row['mean_capacity_total']:.1f}")
    final = by_configuration(summarise(rows[rows["trained_tasks"] == tasks], by=MATRIX_BY), "evaluated_task",
                             lambda row: accuracy_text(*stat_columns(row)))
    parts = [
        f"# {manifest['experiment']}: {heading}\n",
        f"{setting_text(manifest)} {sequence_text(manifest)}Each task is evaluated with its own mask and biases.\n",
        f"## Average test accuracy over the tasks seen (%), by tasks learnt\n\nMean ± std over seeds. {STATUS_LEGEND}\n",
        average.rename_axis("tasks learnt").to_markdown() + "\n",
        "## Weights used by the tasks learnt so far (% of all Linear/Conv weights, mean over seeds)\n",
        capacity.rename_axis("tasks learnt").to_markdown() + "\n",
        f"## After all {tasks} tasks: test accuracy of each task (%)\n",
        final.rename_axis("task").to_markdown() + "\n",
        f"## How many tasks fit\n\nTasks whose test accuracy after the whole sequence is ≥ {100 * FIT_ACCURACY:g}%.\n",
        fit_counts(rows, tasks).to_markdown(index=False) + "\n",
    ]
    return "\n".join(parts)


# -- figures -----------------------------------------------------------------------------------
def colours_of(keys: list[tuple]):
    """``(method, variant, alpha)`` → colour: α's own (labels.ALPHA_COLOURS, as every other figure) when only α differs;
    tab10 otherwise (two variants at one α would share α's colour)."""
    if len({key[:2] for key in keys}) == 1:
        return {key: alpha_colour(key[2]) for key in keys}
    plt = _pyplot()
    return dict(zip(keys, plt.get_cmap("tab10")(np.arange(len(keys)) % 10)))


def average_accuracy_figure(rows: pd.DataFrame, title: str):
    """Average test accuracy over the tasks seen against the number of tasks learnt; one line per configuration."""
    plt = _pyplot()
    averages = average_rows(rows)
    keys = configurations(averages)
    colours = colours_of(keys)
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key in keys:
        group = of_configuration(averages, key)
        plot_line(axis, group, "trained_tasks", colours[key], line_label(row_label(*key), group, "trained_tasks"), scale=1.0)
    axis.set_xticks(sorted(averages["trained_tasks"].unique()))
    axis.set_xlabel("tasks learnt")
    axis.set_ylabel("average test accuracy over the tasks seen (%)")
    axis.set_title(f"{title}: line = mean over seeds, band = min–max", fontsize=10)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def panels(rows: pd.DataFrame, width: float, **subplots):
    """The figure, its axes and, per configuration, (axis, key, its matrix entries); and the number of tasks."""
    matrix = matrix_table(rows)
    keys = configurations(matrix)
    figure, axes = _pyplot().subplots(1, len(keys), figsize=(width * len(keys) + 0.8, 3.8), squeeze=False, **subplots)
    per_key = [(axis, key, of_configuration(matrix, key)) for axis, key in zip(axes[0], keys)]
    return figure, axes[0], per_key, int(matrix["trained_tasks"].max())


def capacity_figure(rows: pd.DataFrame, title: str):
    """Per configuration: stacked bars of the weights each task claimed (new), dots for the size of each task's own mask."""
    figure, axes, per_key, tasks = panels(rows, 3.6, sharey=True, layout="constrained")
    task_map, task_norm = task_colour_scale(tasks)
    task_colours = task_map(task_norm(np.arange(1, tasks + 1)))
    for axis, key, entries in per_key:
        claimed = entries.groupby("evaluated_task")["mean_capacity_new"].first()
        own = entries[entries["trained_tasks"] == entries["evaluated_task"]].set_index("trained_tasks")["mean_capacity"]
        for learnt in range(1, tasks + 1):
            bottom = 0.0
            for task in range(1, learnt + 1):
                share = 100 * claimed.get(task, np.nan)
                axis.bar(learnt, share, bottom=bottom, color=task_colours[task - 1], width=0.8)
                bottom += 0 if np.isnan(share) else share
        axis.plot(own.index, 100 * own.to_numpy(), "k.", markersize=7, label="size of the task's own mask")
        axis.set_title(row_label(*key), fontsize=9)
        axis.set_xlabel("tasks learnt")
        axis.set_xticks(task_ticks(tasks))
        axis.set_ylim(0, 100)
        axis.grid(True, axis="y", alpha=0.3)
    axes[0].set_ylabel("% of all weights (stack: claimed by task 1, 2, ...)")
    axes[0].legend(fontsize=7, loc="upper left")
    from matplotlib.cm import ScalarMappable

    key = figure.colorbar(ScalarMappable(task_norm, task_map), ax=axes.tolist(), shrink=0.9, label="task that claimed the weights")
    key.set_ticks(task_ticks(tasks))
    figure_title(figure, f"{title}: capacity used per task (mean over seeds)")
    return figure


def task_colour_scale(tasks: int):
    """One colour per task (viridis), as a colormap and a norm whose bins are the task numbers 1..tasks."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    colourmap = ListedColormap(_pyplot().get_cmap("viridis")(np.linspace(0, 0.95, tasks)))
    return colourmap, BoundaryNorm(np.arange(0.5, tasks + 1.5), tasks)


def task_ticks(tasks: int) -> list[int]:
    """Every task number up to 12 tasks, else about ten of them."""
    return list(range(1, tasks + 1, max(1, -(-tasks // 10))))


#: the narrowest span (pp) of the matrix' colour scale: a few points of forgetting are still seen, noise is not magnified
MIN_COLOUR_SPAN = 10.0


def colour_range(grids: list[np.ndarray]) -> tuple[float, float]:
    """One colour scale for every panel over the accuracies drawn (to the next 5 pp), not 0–100: forgetting of a few
    points, what the matrix is for, is a change of colour."""
    values = np.concatenate([grid[np.isfinite(grid)] for grid in grids]) if grids else np.array([])
    if values.size == 0:
        return 0.0, 100.0
    low, high = 5 * np.floor(values.min() / 5), 5 * np.ceil(values.max() / 5)
    if high - low < MIN_COLOUR_SPAN:
        low = max(0.0, high - MIN_COLOUR_SPAN)
        high = max(high, low + MIN_COLOUR_SPAN)
    return float(low), float(high)


def matrix_figure(rows: pd.DataFrame, title: str):
    """Heatmap per configuration: test accuracy of task j (column) after learning t tasks (row), mean over seeds."""
    figure, axes, per_key, tasks = panels(rows, 3.8)
    grids = []
    for _, _, entries in per_key:
        grid = np.full((tasks, tasks), np.nan)
        for entry in entries.itertuples():
            grid[int(entry.trained_tasks) - 1, int(entry.evaluated_task) - 1] = 100 * entry.mean
        grids.append(grid)
    low, high = colour_range(grids)
    image = None
    for (axis, key, _), grid in zip(per_key, grids):
        image = axis.imshow(grid, vmin=low, vmax=high, cmap="viridis", origin="upper")
        if tasks <= 12:
            for (row, column), value in np.ndenumerate(grid):
                if not np.isnan(value):
                    axis.text(column, row, f"{value:.0f}", ha="center", va="center", fontsize=6,
                              color="black" if value > (low + high) / 2 else "white")
        axis.set_xticks(range(tasks), range(1, tasks + 1), fontsize=7)
        axis.set_yticks(range(tasks), range(1, tasks + 1), fontsize=7)
        axis.set_xlabel("task evaluated")
        axis.set_title(row_label(*key), fontsize=8)
    axes[0].set_ylabel("tasks learnt")
    figure.colorbar(image, ax=axes.tolist(), shrink=0.8, label="test accuracy (%)")
    figure_title(figure, f"{title}: accuracy matrix (each task with its own mask; constant down a column = no forgetting)")
    return figure
