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
from bench_powerprop.reporting.labels import alpha_label, method_label, seeds_note, sparsity_label
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


def group_labeller(logs: pd.DataFrame):
    """A cell group's legend entry, naming only the axes that differ between the experiment's groups."""
    groups = logs[GROUP_AXES].drop_duplicates()
    varies = {axis for axis in GROUP_AXES if groups[axis].nunique(dropna=False) > 1}

    def label(key: dict) -> str:
        parts = [method_label(key["method"], key["variant"])] if varies & {"method", "variant"} or len(varies) == 0 else []
        if "sparsity" in varies:
            parts.append(sparsity_label(key["sparsity"]))
        if "alpha" in varies:
            parts.append(alpha_label(key["alpha"]))
        if "level" in varies:
            parts.append(f"level {key['level']:g}")
        return ", ".join(parts)

    return label


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
    """Left: training loss (log scale); right: validation accuracy (%); both against the training step."""
    import numpy as np

    from bench_powerprop.reporting.figures import _pyplot, figure_title, line_styles, plain_log_ticks, shared_legend

    plt = _pyplot()
    label = group_labeller(logs)
    groups = list(logs.groupby(GROUP_AXES, sort=True, dropna=False))
    styles = line_styles(len(groups))
    figure, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.6), layout="constrained")
    for style, (key, group) in zip(styles, groups):
        seeds = group["seed"].nunique()
        diverged = group.loc[~np.isfinite(group["loss"]), "seed"].nunique()
        name = label(dict(zip(GROUP_AXES, key))) + seeds_note(int(diverged), 0, int(seeds))
        for axis, column in zip(axes, PANELS):
            _band(axis, group, column, style, name, 100.0 if column == "val_accuracy" else 1.0)
    phases = phase_ends(logs)
    for axis, ylabel in zip(axes, PANELS.values()):
        for step in phases:
            axis.axvline(step, color="0.75", linewidth=0.8, zorder=0)
        axis.set_xlabel("training step" + (" (grey lines: a phase ends, e.g. a task)" if phases else ""))
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
    axes[0].set_yscale("log")
    plain_log_ticks(axes[0].yaxis)
    shared_legend(figure, axes, fontsize=8)
    figure_title(figure, f"{title}: training curves (line = mean over seeds, band = min–max)")
    return figure


def write_training_curves(manifest: dict, path: str | Path) -> None:
    from bench_powerprop.reporting.figures import save_all

    title = f"{manifest['experiment']} ({manifest['data']})"
    save_all({Path(path): training_curves_figure(log_rows(manifest), title)})
