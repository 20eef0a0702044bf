"""Figures: accuracy vs weights remaining (the Powerprop notebook's figure) and θ histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench_powerprop.io import save_figure_atomic


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def alpha_label(alpha: float, n_diverged: int, n_seeds: int) -> str:
    label = "α=1 (baseline)" if alpha == 1 else f"α={alpha:g}"
    return label if n_diverged == 0 else f"{label} — {n_diverged}/{n_seeds} seeds diverged"


def accuracy_vs_weights_remaining(runs: pd.DataFrame, path: Path, title: str) -> None:
    """One line per α: mean over converged seeds with a min–max band; diverged seeds dotted."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.5))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, runs["alpha"].nunique()))
    for colour, (alpha, group) in zip(colours, runs.groupby("alpha")):
        _plot_alpha(axis, group, colour, alpha)
    axis.set_xscale("log")
    axis.set_xlabel("weights remaining (%)")
    axis.set_ylabel("test accuracy")
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=150)
    plt.close(figure)


def _plot_alpha(axis, group: pd.DataFrame, colour, alpha: float) -> None:
    group = group.assign(weights_remaining=100 * (1 - group["sparsity"]))
    converged = group[~group["diverged"].astype(bool)]
    diverged_seeds = sorted(group.loc[group["diverged"].astype(bool), "seed"].unique())
    label = alpha_label(alpha, len(diverged_seeds), group["seed"].nunique())
    if not converged.empty:
        stats = converged.groupby("weights_remaining")["test_accuracy"].agg(["mean", "min", "max"])
        axis.plot(stats.index, stats["mean"], color=colour, label=label, marker="o", markersize=3)
        axis.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)
        label = None
    for seed in diverged_seeds:
        seed_rows = group[group["seed"] == seed].sort_values("weights_remaining")
        axis.plot(seed_rows["weights_remaining"], seed_rows["test_accuracy"], color=colour, linestyle=":", label=label)
        label = None


def relative_magnitudes(thetas: list[np.ndarray]) -> np.ndarray:
    """|θ| / max|θ| of its layer, all layers together (what layerwise magnitude pruning ranks)."""
    return np.concatenate([np.abs(theta).ravel() / np.abs(theta).max() for theta in thetas])


def weight_histograms(magnitudes_by_alpha: dict[float, np.ndarray], path: Path, title: str) -> None:
    """Histogram of log10 relative |θ| per α: Powerprop moves mass towards zero (left)."""
    plt = _pyplot()
    alphas = sorted(magnitudes_by_alpha)
    figure, axes = plt.subplots(1, len(alphas), figsize=(3 * len(alphas), 3.2), sharex=True, sharey=True, squeeze=False)
    for axis, alpha in zip(axes[0], alphas):
        magnitudes = magnitudes_by_alpha[alpha]
        axis.hist(np.log10(magnitudes[magnitudes > 0]), bins=80, range=(-6, 0), color="tab:blue")
        small = np.mean(magnitudes < 0.01)
        axis.set_title(f"α={alpha:g}: {100 * small:.0f}% below 1% of layer max", fontsize=9)
        axis.set_xlabel("log10 (|θ| / max |θ| in layer)")
    axes[0][0].set_ylabel("number of weights")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure_atomic(figure, path, dpi=150)
    plt.close(figure)
