"""Training curves of an experiment: loss and validation accuracy against the step, from every cell's ``train_log.csv``.

One line per cell group (every axis but the seed), the mean over its seeds with a min–max band; a
seed whose loss became non-finite is counted in the legend and its non-finite points are left out.
Written by the generic rule ``workflow/rules/curves.smk`` for every active experiment, whatever its kind;
the workflow imports this module at parse time for ``TRAINING_CURVES``, so numpy, pandas and matplotlib
are imported where they are used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench_powerprop.cells import AXIS_NAMES
from bench_powerprop.reporting.labels import alpha_colour, alpha_label, method_label, seeds_note, sparsity_label
from bench_powerprop.training.progress import LOG_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

#: the figure, relative to results/<experiment>/ (the rule's output)
TRAINING_CURVES = "figures/training_curves.png"
GROUP_AXES = [axis for axis in AXIS_NAMES if axis != "seed"]
PANELS = {"loss": "training loss (log)", "val_accuracy": "validation accuracy (%)"}


def log_rows(manifest: dict) -> pd.DataFrame:
    """Every row of every cell's ``train_log.csv``, with the cell's axes."""
    import pandas as pd

    frames = [pd.read_csv(Path(cell["run_dir"]) / "train_log.csv", usecols=LOG_COLUMNS)
              .assign(**{axis: cell.get(axis) for axis in AXIS_NAMES}) for cell in manifest["cells"]]
    columns = [*AXIS_NAMES, *LOG_COLUMNS]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def group_labeller(logs: pd.DataFrame, skip: frozenset = frozenset()):
    """A cell group's legend entry, naming only the axes that differ between the experiment's groups (and are not
    in ``skip``: what a panel's title already names)."""
    groups = logs[GROUP_AXES].drop_duplicates()
    varies = {axis for axis in GROUP_AXES if groups[axis].nunique(dropna=False) > 1} - skip

    def label(key: dict) -> str:
        parts = [method_label(key["method"], key["variant"])] if varies & {"method", "variant"} or len(varies) == 0 else []
        if "sparsity" in varies:
            parts.append(sparsity_label(key["sparsity"]))
        if "alpha" in varies:
            parts.append(alpha_label(key["alpha"]))
        if "level" in varies:
            parts.append(f"level {key['level']:g}")
        return ", ".join(parts) or method_label(key["method"], key["variant"])

    return label


#: more cell groups than this: one pair of panels per method [variant] instead of every line on one pair
MAX_LINES = 8
#: pairs of panels a row when split by method
FACET_COLUMNS = 4
#: the tallest a training-curves figure is drawn (inches; its saved PNG stays under 2,400 px with the title and legend)
MAX_FIGURE_HEIGHT_IN = 14.5
REST_AXES = ("sparsity", "level")


def curve_styles(keys: list[dict], rest_axes: tuple[str, ...] = REST_AXES) -> list[dict]:
    """One style per cell group, the same wherever the group's values recur: α's own colour (labels.ALPHA_COLOURS)
    when α varies, line style and marker by the ``rest_axes`` (sparsity, level; and method, variant where the groups
    of several share one pair of panels); tab10 by the ``rest_axes`` when α does not vary."""
    from bench_powerprop.reporting.figures import LINE_STYLES, MARKERS, line_styles

    def rest(key: dict) -> tuple:  # an unset level is NaN, never equal to itself: None instead
        return tuple(None if pd.isna(key[axis]) else key[axis] for axis in rest_axes)

    import pandas as pd

    rests = list(dict.fromkeys(rest(key) for key in keys))
    alpha_varies = len({key["alpha"] for key in keys}) > 1
    palette = line_styles(len(rests))
    styles = []
    for key in keys:
        index = rests.index(rest(key))
        if alpha_varies:
            styles.append({"colour": alpha_colour(key["alpha"]), "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
                           "marker": MARKERS[index % len(MARKERS)]})
        else:
            styles.append(palette[index])
    return styles


def phase_ends(logs: pd.DataFrame) -> list[int]:
    """The last logged step of every phase but the last (continual: each task), when every cell has the same
    phases at the same steps; [] otherwise (e.g. PackNet's retraining phases beside EfficientPackNet's)."""
    ends = set()
    for _, cell in logs.groupby(list(AXIS_NAMES), dropna=False, sort=False):
        changed = cell["phase"].ne(cell["phase"].shift(-1)) & cell["phase"].shift(-1).notna()
        ends.add(tuple(int(step) for step in cell.loc[changed, "step"]))
    return list(ends.pop()) if len(ends) == 1 else []


def _band(axis, rows: pd.DataFrame, column: str, style: dict, label: str, scale: float) -> None:
    import numpy as np

    finite = rows[np.isfinite(rows[column])]
    if finite.empty:
        return
    stats = scale * finite.groupby("step")[column].agg(["mean", "min", "max"])
    axis.plot(stats.index, stats["mean"], color=style["colour"], linestyle=style["linestyle"], marker=style["marker"],
              markersize=2, markevery=max(1, len(stats) // 12), label=label)
    axis.fill_between(stats.index, stats["min"], stats["max"], color=style["colour"], alpha=0.15)


def training_curves_figure(logs: pd.DataFrame, title: str):
    """Training loss (log scale) over validation accuracy (%), both against the training step. Up to MAX_LINES cell
    groups share one pair of panels; more get one pair per method [variant], lines styled the same in every pair."""
    import numpy as np

    from bench_powerprop.reporting.figures import _pyplot, figure_title, plain_log_ticks, shared_legend

    plt = _pyplot()
    if logs.empty:  # every cell ran fewer steps than train.log_every: nothing was logged
        figure = plt.figure(figsize=(6, 2))
        figure.text(0.5, 0.5, "no training step was logged (train.log_every > train.steps)", ha="center", va="center")
        figure_title(figure, f"{title}: training curves")
        return figure
    groups = list(logs.groupby(GROUP_AXES, sort=True, dropna=False))
    keys = [dict(zip(GROUP_AXES, key)) for key, _ in groups]
    facets = [method_label(key["method"], key["variant"]) for key in keys] if len(groups) > MAX_LINES else [""] * len(keys)
    names = list(dict.fromkeys(facets))
    label = group_labeller(logs, frozenset({"method", "variant"}) if len(names) > 1 else frozenset())
    columns = min(FACET_COLUMNS, len(names))
    rows = -(-len(names) // columns)
    # a pair of panels is 6 in tall, less when the rows would pass the 16 in (2,400 px at dpi 150) a report shows
    pair_height = min(6.0, MAX_FIGURE_HEIGHT_IN / rows)
    figure, axes = plt.subplots(2 * rows, columns, figsize=(9 if columns == 1 else 3.6 * columns, pair_height * rows),
                                squeeze=False, sharex="col", layout="constrained")
    pairs = {name: (axes[2 * (index // columns)][index % columns], axes[2 * (index // columns) + 1][index % columns])
             for index, name in enumerate(names)}
    for index in range(len(names), rows * columns):
        figure.delaxes(axes[2 * (index // columns)][index % columns])
        figure.delaxes(axes[2 * (index // columns) + 1][index % columns])
    # one pair of panels for every group: the method and variant tell lines apart too (split: each pair's title names them)
    rest_axes = REST_AXES if len(names) > 1 else ("method", "variant", *REST_AXES)
    for style, facet, key, (_, group) in zip(curve_styles(keys, rest_axes), facets, keys, groups):
        seeds = group["seed"].nunique()
        diverged = group.loc[~np.isfinite(group["loss"]), "seed"].nunique()
        name = label(key)
        loss_axis, accuracy_axis = pairs[facet]
        _band(loss_axis, group, "loss", style, name + seeds_note(int(diverged), 0, int(seeds)), 1.0)
        _band(accuracy_axis, group, "val_accuracy", style, name, 100.0)  # the diverged count once, in the loss panel's title
    phases = phase_ends(logs)
    for facet, (loss_axis, accuracy_axis) in pairs.items():
        for axis, ylabel, what in ((loss_axis, PANELS["loss"], "training loss"),
                                   (accuracy_axis, PANELS["val_accuracy"], "validation accuracy")):
            for step in phases:
                axis.axvline(step, color="0.75", linewidth=0.8, zorder=0)
            axis.set_ylabel(ylabel)
            axis.set_title(f"{facet}: {what}" if facet else what, fontsize=9)
            axis.grid(True, alpha=0.3)
        loss_axis.set_yscale("log")
        plain_log_ticks(loss_axis.yaxis)
        accuracy_axis.set_xlabel("training step" + (" (grey lines: a phase ends)" if phases else ""))
    shared_legend(figure, axes.ravel()[[axis in figure.axes for axis in axes.ravel()]], fontsize=8)
    figure_title(figure, f"{title}: training curves (line = mean over seeds, band = min–max)")
    return figure


def write_training_curves(manifest: dict, path: str | Path) -> None:
    from bench_powerprop.reporting.figures import save_all

    title = f"{manifest['experiment']} ({manifest['data']})"
    save_all({Path(path): training_curves_figure(log_rows(manifest), title)})
