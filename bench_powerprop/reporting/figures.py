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


def plot_line(axis, group: pd.DataFrame, x: str, colour, label: str, scale: float = 100.0) -> bool:
    """Mean with min–max band over non-diverged seeds; crosses at seeds at chance. False when nothing is left."""
    included = group[group["status"] != DIVERGED]
    if included.empty:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: no run left")
        return False
    stats = included.groupby(x)["test_accuracy"].agg(["mean", "min", "max"])
    xs = scale * stats.index.to_numpy()
    axis.plot(xs, stats["mean"], color=colour, marker="o", markersize=3, label=label)
    axis.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=0.2)
    chance = included[included["status"] == COLLAPSED]
    if not chance.empty:
        axis.scatter(scale * chance[x], chance["test_accuracy"], marker="x", color="grey", s=14, zorder=3)
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
