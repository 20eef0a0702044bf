"""Figures from tidy rows, one convention for all of them.

A line is the mean over the seeds that did not diverge, with a min–max band over those seeds.
Seeds that diverged (non-finite loss) are left out and counted in the legend; seeds at chance
accuracy are kept in the line and drawn as grey crosses. A panel with no usable run says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench_powerprop.io import save_figure_atomic
from bench_powerprop.reporting.labels import alpha_label, method_label, seeds_note
from bench_powerprop.reporting.rows import COLLAPSED, DIVERGED
from bench_powerprop.reporting.tables import line_key_label

LINE_KEYS = ["method", "variant", "sparsity", "alpha"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_all(figures: dict[Path, object]) -> None:
    """Save figures only once all of them were drawn: a failure leaves none half-written."""
    for path, figure in figures.items():
        save_figure_atomic(figure, path, dpi=150, bbox_inches="tight")
        _pyplot().close(figure)


def line_label(base: str, group: pd.DataFrame, x: str) -> str:
    """The legend entry: the configuration plus how many seeds diverged or ended at chance (per point)."""
    seeds = group.groupby(x)["seed"].size().max()
    diverged = group.loc[group["status"] == DIVERGED, "seed"].nunique()
    at_chance = group.loc[group["status"] == COLLAPSED].groupby(x)["seed"].size().max() if (group["status"] == COLLAPSED).any() else 0
    return base + seeds_note(int(diverged), int(at_chance or 0), int(seeds))


def plot_line(axis, group: pd.DataFrame, x: str, colour, label: str, scale: float = 100.0, y: str = "test_accuracy",
              linestyle: str = "-") -> bool:
    """Mean with min–max band over non-diverged seeds; crosses at seeds at chance. False when nothing is left."""
    included = group[group["status"] != DIVERGED]
    if included.empty:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: no run left")
        return False
    stats = included.groupby(x)[y].agg(["mean", "min", "max"])
    xs = scale * stats.index.to_numpy()
    axis.plot(xs, stats["mean"], color=colour, marker="o", markersize=3, label=label, linestyle=linestyle)
    axis.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=0.2)
    chance = included[included["status"] == COLLAPSED]
    if not chance.empty and y == "test_accuracy":
        axis.scatter(scale * chance[x], chance[y], marker="x", color="grey", s=14, zorder=3)
    return True


def _chance_legend(axis, rows: pd.DataFrame) -> None:
    if (rows["status"] == COLLAPSED).any():
        axis.scatter([], [], marker="x", color="grey", s=14, label="× a seed at chance accuracy")


def accuracy_vs_weights_remaining(rows: pd.DataFrame, title: str):
    """One-shot pruning: test accuracy against the weights kept (log scale), one line per trained configuration."""
    plt = _pyplot()
    rows = rows.assign(weights_kept=1.0 - rows["target_sparsity"])
    label = line_key_label(rows)
    groups = list(rows.groupby(LINE_KEYS, sort=True))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, len(groups))))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for colour, (key, group) in zip(colours, groups):
        plot_line(axis, group, "weights_kept", colour, line_label(label(*key), group, "weights_kept"))
    _chance_legend(axis, rows)
    axis.set_xscale("log")
    axis.set_xlabel("weights remaining (%)")
    axis.set_ylabel("test accuracy")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def relative_magnitudes(thetas: list[np.ndarray]) -> np.ndarray:
    """|θ| / max|θ| of its layer, all layers together (what layerwise magnitude pruning ranks)."""
    return np.concatenate([np.abs(theta).ravel() / np.abs(theta).max() for theta in thetas])


def weight_histograms(magnitudes: dict[str, np.ndarray], title: str):
    """Histogram of log10 relative |θ| per trained configuration: Powerprop moves mass towards zero (left)."""
    plt = _pyplot()
    labels = list(magnitudes)
    figure, axes = plt.subplots(1, len(labels), figsize=(3 * len(labels), 3.2), sharex=True, sharey=True, squeeze=False)
    for axis, label in zip(axes[0], labels):
        values = magnitudes[label]
        axis.set_xlabel("log10 (|θ| / max |θ| in layer)")
        if not np.isfinite(values).all():
            axis.text(0.5, 0.5, "diverged:\nweights not finite", ha="center", va="center", transform=axis.transAxes, color="red")
            axis.set_title(f"{label}: diverged", fontsize=9)
            continue
        axis.hist(np.log10(values[values > 0]), bins=80, range=(-6, 0), color="tab:blue")
        axis.set_title(f"{label}: {100 * np.mean(values < 0.01):.0f}% below 1% of layer max", fontsize=9)
    axes[0][0].set_ylabel("number of weights")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def per_layer_weight_histograms(thetas: dict[str, dict[str, np.ndarray]], title: str):
    """One panel per layer, one step histogram of log10(|θ| / max |θ| of the layer) per trained configuration
    (``thetas``: configuration label → layer name → θ); the legend gives each one's share below 1 % of the layer max."""
    plt = _pyplot()
    labels = list(thetas)
    layers = list(thetas[labels[0]])
    colours = dict(zip(labels, plt.get_cmap("tab10")(range(len(labels)))))
    figure, axes = plt.subplots(1, len(layers), figsize=(3.2 * len(layers), 3.4), sharex=True, squeeze=False)
    for axis, layer in zip(axes[0], layers):
        for label in labels:
            theta = np.abs(thetas[label][layer]).ravel()
            if not np.isfinite(theta).all() or theta.max() == 0:
                axis.plot([], [], color=colours[label], linestyle=":", label=f"{label}: diverged or all zero")
                continue
            values = theta / theta.max()
            axis.hist(np.log10(values[values > 0]), bins=60, range=(-6, 0), histtype="step", color=colours[label],
                      label=f"{label}: {100 * np.mean(values < 0.01):.0f}% < 1% of max")
        shape = tuple(thetas[labels[0]][layer].shape)
        axis.set_title(f"{'conv' if len(shape) == 4 else 'dense'} {layer} {shape}", fontsize=9)
        axis.set_xlabel("log10 (|θ| / max |θ| in layer)")
        axis.legend(fontsize=6, loc="upper left")
    axes[0][0].set_ylabel("number of weights")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def sparse_accuracy_vs_sparsity(rows: pd.DataFrame, title: str):
    """Sparse training: one panel per method (and variant), a line per α, dense runs as dashed lines."""
    plt = _pyplot()
    dense = rows[rows["method"] == "dense"]
    panels = [key for key in dict.fromkeys(zip(rows["method"], rows["variant"])) if key[0] != "dense"] or [("dense", "default")]
    alphas = sorted(rows["alpha"].unique())
    colours = dict(zip(alphas, plt.get_cmap("tab10")(range(len(alphas)))))
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), sharey=True, squeeze=False)
    for axis, (method, variant) in zip(axes[0], panels):
        panel = rows[(rows["method"] == method) & (rows["variant"] == variant)]
        drawn = [plot_line(axis, group, "sparsity", colours[alpha], line_label(alpha_label(alpha), group, "sparsity"))
                 for alpha, group in panel.groupby("alpha")] if method != "dense" else []
        for alpha, group in dense.groupby("alpha"):
            kept = group[group["status"] != DIVERGED]
            if not kept.empty:
                axis.axhline(kept["test_accuracy"].mean(), color=colours[alpha], linestyle="--", linewidth=1,
                             label=line_label(f"dense, {alpha_label(alpha)}", group, "sparsity"))
        if drawn and not any(drawn):
            axis.text(0.5, 0.5, "every seed diverged", ha="center", va="center", transform=axis.transAxes, color="red")
        _chance_legend(axis, panel)
        axis.set_title(method_label(method, variant))
        axis.set_xticks(sorted(100 * rows.loc[rows["method"] != "dense", "sparsity"].unique()))
        axis.set_xlabel("target sparsity (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("test accuracy")
    figure.suptitle(f"{title}: line = mean over seeds, band = min–max, dashed = dense", fontsize=10)
    figure.tight_layout()
    return figure


def _alpha_panels(alphas, width: float = 5.0, height: float = 4.2, rows: int = 1):
    plt = _pyplot()
    figure, axes = plt.subplots(rows, len(alphas), figsize=(width * len(alphas), height * rows), sharey="row", squeeze=False)
    return figure, axes


def _percent_log_axis(axis) -> None:
    """A log x axis of percentages labelled 1, 2, 5, 10, ... rather than 10⁰, 2×10⁰."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_xscale("log")
    axis.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def _dense_lines(axis, dense: pd.DataFrame, colour="black") -> None:
    kept = dense[dense["status"] != DIVERGED]
    if not kept.empty:
        axis.axhline(kept["test_accuracy"].mean(), color=colour, linestyle="--", linewidth=1,
                     label=line_label("dense", dense, "sparsity"))


REFERENCE_GREYS = ("black", "dimgray", "darkgray")
CURVE_SOURCE = "Tanaka et al. 2020 (SynFlow), CIFAR-10"


def pai_accuracy_vs_weights_remaining(rows: pd.DataFrame, reference: pd.DataFrame, labels, scorers: dict, curves: pd.DataFrame,
                                      title: str):
    """Pruning at initialisation: one panel per α, a line per pai variant coloured by its scorer (solid: the
    model's own init; dotted: a re-initialisation), weights remaining on a log scale; the reference
    experiment's methods dashed grey, its dense run a horizontal line. ``curves`` (published per-run
    accuracies, other dataset/model) get panels of their own, the same colour per scorer, never mixed with ours."""
    plt = _pyplot()
    alphas = sorted(rows["alpha"].unique())
    models = sorted(curves["model"].unique())
    palette = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(sorted({*scorers.values(), *curves["method"]}))}
    figure, axes = _alpha_panels([*alphas, *models])
    for axis, alpha in zip(axes[0], alphas):
        for variant in sorted(scorers):
            group = rows[(rows["method"] == "pai") & (rows["variant"] == variant) & (rows["alpha"] == alpha)]
            style = "-" if labels("pai", variant) == scorers[variant] else ":"
            _sparsity_line(axis, group, palette[scorers[variant]], labels("pai", variant), style)
        theirs = [key for key in dict.fromkeys(zip(reference["method"], reference["variant"])) if key[0] != "dense"]
        for colour, (method, variant) in zip(REFERENCE_GREYS * 3, theirs):
            group = reference[(reference["method"] == method) & (reference["variant"] == variant) & (reference["alpha"] == alpha)]
            _sparsity_line(axis, group, colour, f"{labels(method, variant)} (reference)", "--")
        _dense_lines(axis, reference[(reference["method"] == "dense") & (reference["alpha"] == alpha)])
        _chance_legend(axis, rows[rows["alpha"] == alpha])
        axis.set_title(f"ours: {alpha_label(alpha)}")
    for axis, model in zip(axes[0][len(alphas):], models):
        for method, group in curves[curves["model"] == model].groupby("method"):
            stats = group.groupby("sparsity")["top1_accuracy_percent"].agg(["mean", "min", "max"]) / 100
            xs = 100 * (1 - stats.index.to_numpy())
            axis.plot(xs, stats["mean"], color=palette[method], marker="o", markersize=3, label=f"{method} ({group['run'].nunique()} runs)")
            axis.fill_between(xs, stats["min"], stats["max"], color=palette[method], alpha=0.2)
        axis.set_title(f"published: {CURVE_SOURCE} {model}\nother dataset/model — not comparable", fontsize=8)
    for axis in axes[0]:
        _finish_panel(axis, "weights remaining (%)", "lower right", 6)
    return _finish(figure, axes, f"{title}: prune at init, then train the mask (line = mean over seeds, band = min–max)")


def _sparsity_line(axis, group: pd.DataFrame, colour, label: str, style: str) -> None:
    if not group.empty:
        group = group.assign(weights_kept=1.0 - group["sparsity"])
        plot_line(axis, group, "weights_kept", colour, line_label(label, group, "weights_kept"), linestyle=style)


def lottery_ticket_vs_controls(rows: pd.DataFrame, labels, title: str):
    """Lottery tickets: one panel per α; test accuracy against the weights remaining at each level (log scale,
    100% on the left as in Frankle & Carbin), the ticket(s) and their controls; level 0 (dense) dashed."""
    plt = _pyplot()
    alphas = sorted(rows["alpha"].unique())
    rows = rows.assign(weights_kept=1.0 - rows["actual_sparsity"])
    levels = rows[rows["level"].fillna(-1) > 0]
    start = rows[rows["level"] == 0]
    keys = list(dict.fromkeys(zip(levels["method"], levels["variant"])))
    colours = plt.get_cmap("tab10")(range(max(1, len(keys))))
    figure, axes = _alpha_panels(alphas)
    for axis, alpha in zip(axes[0], alphas):
        for colour, (method, variant) in zip(colours, keys):
            group = levels[(levels["method"] == method) & (levels["variant"] == variant) & (levels["alpha"] == alpha)]
            if method == "lottery":  # every ticket chain starts from the dense level 0
                group = pd.concat([start[start["alpha"] == alpha], group])
            if not group.empty:
                plot_line(axis, group, "weights_kept", colour, line_label(labels(method, variant), group, "weights_kept"))
        _dense_lines(axis, rows[(rows["level"] == 0) & (rows["alpha"] == alpha)])
        _chance_legend(axis, levels[levels["alpha"] == alpha])
        axis.set_title(alpha_label(alpha))
        _finish_panel(axis, "weights remaining (%), one point per level", "lower left", 7)
        axis.invert_xaxis()
    return _finish(figure, axes, f"{title}: ticket vs controls (line = mean over seeds, band = min–max)")


def _finish_panel(axis, xlabel: str, legend_at: str, legend_size: int) -> None:
    """A weights-remaining panel: percent log axis, grid, legend."""
    _percent_log_axis(axis)
    axis.set_xlabel(xlabel)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=legend_size, loc=legend_at)


def _finish(figure, axes, suptitle: str):
    axes[0][0].set_ylabel("test accuracy")
    figure.suptitle(suptitle, fontsize=10)
    figure.tight_layout()
    return figure


NORM_PANELS = {"grad_norm": "‖∂L/∂ trained parameters‖ (φ under Powerprop)", "grad_norm_theta": "‖∂L/∂θ‖ (effective weights)"}


def gradient_norm_vs_step(norms: pd.DataFrame, labels, title: str):
    """Gradient flow: the norm of the masked gradient on a fixed held-out batch against the training step,
    one line per method [variant] (mean over non-diverged seeds, min–max band), one column per α; the
    second row repeats it for the effective weights θ (equal to the first at α = 1)."""
    plt = _pyplot()
    alphas = sorted(norms["alpha"].unique())
    keys = list(dict.fromkeys(zip(norms["method"], norms["variant"], norms["sparsity"])))
    colours = plt.get_cmap("tab10")(range(max(1, len(keys))))
    figure, axes = _alpha_panels(alphas, height=3.6, rows=len(NORM_PANELS))
    for row, (column, ylabel) in enumerate(NORM_PANELS.items()):
        for axis, alpha in zip(axes[row], alphas):
            for colour, (method, variant, sparsity) in zip(colours, keys):
                group = norms[(norms["method"] == method) & (norms["variant"] == variant) & (norms["sparsity"] == sparsity)
                              & (norms["alpha"] == alpha)]
                if not group.empty:
                    label = f"{labels(method, variant)}" + ("" if sparsity == 0 else f" at {100 * sparsity:g}%")
                    plot_line(axis, group, "step", colour, line_label(label, group, "step"), scale=1.0, y=column)
            axis.set_yscale("log")
            axis.set_xlabel("training step")
            axis.set_title(f"{alpha_label(alpha)}: {ylabel}", fontsize=9)
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize=6)
        axes[row][0].set_ylabel("gradient norm (log)")
    figure.suptitle(f"{title}: gradient norm on a fixed validation batch (line = mean over seeds, band = min–max)", fontsize=10)
    figure.tight_layout()
    return figure
