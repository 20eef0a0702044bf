"""Figures from tidy rows, one convention for all of them.

A line is the mean over the seeds that did not diverge, with a min–max band over those seeds.
Seeds that diverged (non-finite loss) are left out and counted in the legend; seeds at chance
accuracy are kept in the line and drawn as grey crosses. A panel with no usable run says so.
Accuracy is drawn in percent, as every table prints it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bench_powerprop.io import save_figure_atomic
from bench_powerprop.reporting.labels import alpha_colour, alpha_label, method_label, seeds_note, split_seeds_note
from bench_powerprop.reporting.rows import COLLAPSED, DIVERGED
from bench_powerprop.reporting.tables import line_key_label

LINE_KEYS = ["method", "variant", "sparsity", "alpha"]
#: columns holding a fraction that figures draw in percent
PERCENT_COLUMNS = ("test_accuracy", "val_accuracy")
ACCURACY_LABEL = "test accuracy (%)"
#: when colour alone runs out (tab10), lines also differ in style and marker
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


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


def y_scale(column: str) -> float:
    return 100.0 if column in PERCENT_COLUMNS else 1.0


def plot_line(axis, group: pd.DataFrame, x: str, colour, label: str, scale: float = 100.0, y: str = "test_accuracy",
              linestyle: str = "-", marker: str = "o", zorder: float = 2, linewidth: float = 1.5, alpha: float = 1.0) -> bool:
    """Mean with min–max band over non-diverged seeds; crosses at seeds at chance. False when nothing is left."""
    included = group[group["status"] != DIVERGED]
    if included.empty:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: no run left")
        return False
    stats = y_scale(y) * included.groupby(x)[y].agg(["mean", "min", "max"])
    xs = scale * stats.index.to_numpy()
    axis.plot(xs, stats["mean"], color=colour, marker=marker, markersize=3, label=label, linestyle=linestyle, zorder=zorder,
              linewidth=linewidth, alpha=alpha)
    axis.fill_between(xs, stats["min"], stats["max"], color=colour, alpha=0.2, zorder=zorder - 1)
    chance = included[included["status"] == COLLAPSED]
    if not chance.empty and y == "test_accuracy":
        axis.scatter(scale * chance[x], y_scale(y) * chance[y], marker="x", color="grey", s=14, zorder=zorder + 1)
    return True


def _chance_legend(axis, rows: pd.DataFrame) -> None:
    if (rows["status"] == COLLAPSED).any():
        axis.scatter([], [], marker="x", color="grey", s=14, label="a seed at chance accuracy")


def line_styles(count: int, colourmap: str = "tab10") -> list[dict]:
    """``count`` distinguishable lines: colours of ``colourmap`` (viridis: ordered), then line style and marker."""
    plt = _pyplot()
    if colourmap == "viridis":
        colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(1, count)))
    else:
        colours = plt.get_cmap("tab10")(np.arange(count) % 10)
    return [{"colour": colours[index], "linestyle": LINE_STYLES[index // 10 % len(LINE_STYLES)],
             "marker": MARKERS[index % len(MARKERS)]} for index in range(count)]


def configuration_styles(keys: list[tuple]) -> dict[tuple, dict]:
    """Line styles of trained configurations ``(method, variant, sparsity, alpha)``, the same in every figure of an
    experiment: when only α differs, α's own colour (labels.ALPHA_COLOURS); otherwise tab10, then style and marker."""
    keys = list(dict.fromkeys(keys))
    if len({key[:3] for key in keys}) == 1:
        return {key: {"colour": alpha_colour(key[3]), "linestyle": "-", "marker": MARKERS[index % len(MARKERS)]}
                for index, key in enumerate(keys)}
    return dict(zip(keys, line_styles(len(keys))))


def shared_legend(figure, axes, fontsize: float = 9, columns: int | None = None) -> None:
    """One legend below all panels, each configuration once (the panels draw the same ones); what a
    label says about one panel's seeds ("1/2 diverged") moves to that panel's title."""
    entries: dict[str, object] = {}
    for axis in np.ravel(axes):
        notes = []
        for handle, label in zip(*axis.get_legend_handles_labels()):
            name, note = split_seeds_note(label)
            entries.setdefault(name, handle)
            if note:
                notes.append(f"{name}: {note}")
        if notes:
            text = wrapped("; ".join(notes), axis.get_position().width * figure.get_figwidth(), 8)
            axis.set_title(f"{axis.get_title()}\n{text}", fontsize=min(axis.title.get_fontsize(), 9))
    if not entries:
        return
    width = max(len(label) for label in entries)
    columns = columns or max(1, min(len(entries), int(figure.get_figwidth() * 72 / (fontsize * 0.62 * width + 40))))
    figure.legend(list(entries.values()), list(entries), loc="outside lower center", ncol=columns, fontsize=fontsize)


def accuracy_vs_weights_remaining(rows: pd.DataFrame, title: str):
    """One-shot pruning: test accuracy against the weights kept (log scale), one line per trained configuration."""
    plt = _pyplot()
    rows = rows.assign(weights_kept=1.0 - rows["target_sparsity"])
    label = line_key_label(rows)
    groups = list(rows.groupby(LINE_KEYS, sort=True))
    styles = configuration_styles([tuple(key) for key, _ in groups])
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for key, group in groups:
        style = styles[tuple(key)]
        plot_line(axis, group, "weights_kept", style["colour"], line_label(label(*key), group, "weights_kept"),
                  linestyle=style["linestyle"], marker=style["marker"])
    _chance_legend(axis, rows)
    _percent_log_axis(axis)
    axis.set_xlabel("weights remaining (%)")
    axis.set_ylabel(ACCURACY_LABEL)
    axis.set_title(title)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    return figure


def wrapped(text: str, width_inches: float, fontsize: float) -> str:
    """``text`` in lines that fit ``width_inches`` at ``fontsize`` (an average glyph is about 0.55 em wide)."""
    return "\n".join(textwrap.wrap(text, max(30, int(width_inches * 72 / (0.55 * fontsize)))))


def figure_title(figure, text: str, fontsize: float = 10) -> None:
    """The suptitle, wrapped to the figure's width: a long title never runs past a narrow figure."""
    figure.suptitle(wrapped(text, figure.get_figwidth(), fontsize), fontsize=fontsize)


def relative_magnitudes(thetas: list[np.ndarray]) -> np.ndarray:
    """|θ| / max|θ| of its layer, all layers together (what layerwise magnitude pruning ranks)."""
    return np.concatenate([np.abs(theta).ravel() / np.abs(theta).max() for theta in thetas])


#: the log10 relative magnitudes the histograms span: six orders of magnitude below the layer's largest weight
MAGNITUDE_RANGE = (-6.0, 0.0)
MAGNITUDE_LABEL = "log10 (|θ| / max |θ| in its layer)"
#: the smallest share (%) the cumulative axis shows
CDF_FLOOR = 0.01
#: at most this many per-layer panels a row (a LeNet-5 has five layers)
HISTOGRAM_COLUMNS = 3


def _magnitude_cdf(axis, values: np.ndarray, colour, label: str) -> None:
    """The share of weights (%) at or below each log10 relative magnitude: one line per configuration, so
    several overlay on one axis and the share below any threshold is read off directly."""
    if not np.isfinite(values).all() or values.max() == 0:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: diverged or all zero")
        return
    logs = np.sort(np.log10(np.clip(values, 10 ** MAGNITUDE_RANGE[0], None)))
    axis.plot(logs, 100 * np.arange(1, len(logs) + 1) / len(logs), color=colour, linewidth=1.6,
              label=f"{label}: {100 * np.mean(values < 0.01):.0f}% below 1%")


def _magnitude_axis(axis) -> None:
    axis.set_xlim(*MAGNITUDE_RANGE)
    axis.set_yscale("log")  # the small weights pruning removes are the first percent or so: a log share shows them
    axis.set_ylim(CDF_FLOOR, 100)
    plain_log_ticks(axis.yaxis)
    axis.axvline(-2, color="0.6", linewidth=0.8, linestyle="--", zorder=0)  # 1% of the layer max, the legend's threshold
    axis.set_xlabel(MAGNITUDE_LABEL)
    axis.grid(True, alpha=0.3)


def weight_histograms(magnitudes: dict[str, np.ndarray], title: str, colours: dict | None = None):
    """The distribution of log10 relative |θ| of every trained configuration on one axis, as cumulative shares: the
    further up-left a line, the more weights sit orders of magnitude below their layer's largest (Powerprop's
    effect). ``colours``: label → colour (configuration_styles); tab10 otherwise."""
    plt = _pyplot()
    labels = list(magnitudes)
    colours = colours or dict(zip(labels, plt.get_cmap("tab10")(np.arange(len(labels)) % 10)))
    figure, axis = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    for label in labels:
        _magnitude_cdf(axis, np.asarray(magnitudes[label], dtype=float), colours[label], label)
    _magnitude_axis(axis)
    axis.set_ylabel("weights at or below x (%, log)")
    axis.legend(fontsize=8, loc="lower right")
    figure_title(figure, f"{title}: cumulative share, log scale")
    return figure


def per_layer_weight_histograms(thetas: dict[str, dict[str, np.ndarray]], title: str, colours: dict | None = None):
    """One panel per layer (at most HISTOGRAM_COLUMNS a row), the cumulative share of log10(|θ| / max |θ| of the layer)
    of every trained configuration overlaid (``thetas``: configuration label → layer name → θ); the legend below gives
    each configuration once."""
    plt = _pyplot()
    labels = list(thetas)
    layers = list(thetas[labels[0]])
    colours = colours or dict(zip(labels, plt.get_cmap("tab10")(np.arange(len(labels)) % 10)))
    columns = min(HISTOGRAM_COLUMNS, len(layers))
    rows = -(-len(layers) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows + 0.8), sharey=True, squeeze=False,
                                layout="constrained")
    for axis in axes.ravel()[len(layers):]:
        figure.delaxes(axis)
    for axis, layer in zip(axes.ravel(), layers):
        for label in labels:
            theta = np.abs(np.asarray(thetas[label][layer], dtype=float)).ravel()
            finite = np.isfinite(theta).all() and theta.max() > 0
            _magnitude_cdf(axis, theta / theta.max() if finite else theta, colours[label], label)
        shape = tuple(thetas[labels[0]][layer].shape)
        axis.set_title(f"{'conv' if len(shape) == 4 else 'dense'} {layer} {shape}", fontsize=9)
        _magnitude_axis(axis)
    for row in axes:
        row[0].set_ylabel("weights at or below x (%, log)")
    for axis in axes.ravel()[:len(layers)]:  # the share below 1% differs per layer: the legend names configurations only
        for line in axis.get_lines():
            line.set_label(line.get_label().split(": ")[0])
    shared_legend(figure, axes.ravel()[:len(layers)], fontsize=8)
    figure_title(figure, f"{title}: cumulative share, log scale; dashed: 1% of the layer max")
    return figure


#: sparse-training panels a row
SPARSE_COLUMNS = 3
#: the width of one sparsity's slot that the α points of a method share
DODGE_WIDTH = 0.6


def sparse_accuracy_vs_sparsity(rows: pd.DataFrame, title: str):
    """Sparse training: one panel per method (and variant), at most SPARSE_COLUMNS a row; at each target sparsity (a
    category, not a distance: no line is drawn between 95% and 99%) one point per α side by side, the mean over seeds
    with a min–max bar, in α's own colour; dense runs as dashed lines of their α's colour."""
    plt = _pyplot()
    dense = rows[rows["method"] == "dense"]
    panels = [key for key in dict.fromkeys(zip(rows["method"], rows["variant"])) if key[0] != "dense"] or [("dense", "default")]
    sparsities = sorted(rows.loc[rows["method"] != "dense", "sparsity"].unique()) or [0.0]
    alphas = sorted(rows["alpha"].unique())
    columns = min(SPARSE_COLUMNS, len(panels))
    panel_rows = -(-len(panels) // columns)
    figure, axes = plt.subplots(panel_rows, columns, figsize=(3.9 * columns, 3.4 * panel_rows + 0.9), sharey=True,
                                squeeze=False, layout="constrained")
    for axis in axes.ravel()[len(panels):]:
        figure.delaxes(axis)
    offsets = {alpha: DODGE_WIDTH * ((index + 0.5) / len(alphas) - 0.5) for index, alpha in enumerate(alphas)}
    for axis, (method, variant) in zip(axes.ravel(), panels):
        panel = rows[(rows["method"] == method) & (rows["variant"] == variant)]
        drawn = [_dodged_points(axis, group, sparsities, offsets[alpha], alpha_colour(alpha),
                                line_label(alpha_label(alpha), group, "sparsity"))
                 for alpha, group in panel.groupby("alpha")] if method != "dense" else []
        for alpha, group in dense.groupby("alpha"):
            kept = group[group["status"] != DIVERGED]
            if not kept.empty:
                axis.axhline(100 * kept["test_accuracy"].mean(), color=alpha_colour(alpha), linestyle="--", linewidth=1,
                             label=line_label(f"dense, {alpha_label(alpha)}", group, "sparsity"), zorder=1)
        if drawn and not any(drawn):
            axis.text(0.5, 0.5, "every seed diverged", ha="center", va="center", transform=axis.transAxes, color="red")
        _chance_legend(axis, panel)
        axis.set_title(method_label(method, variant), fontsize=10)
        axis.set_xticks(range(len(sparsities)), [f"{100 * sparsity:g}%" for sparsity in sparsities])
        axis.set_xlim(-0.5, len(sparsities) - 0.5)
        axis.set_xlabel("target sparsity")
        axis.grid(True, axis="y", alpha=0.3)
    for row in axes:
        row[0].set_ylabel(ACCURACY_LABEL)
    shared_legend(figure, axes.ravel()[:len(panels)])
    figure_title(figure, f"{title}: point = mean over seeds, bar = min–max, dashed = dense")
    return figure


def _dodged_points(axis, group: pd.DataFrame, sparsities: list, offset: float, colour, label: str) -> bool:
    """Mean and min–max bar of the non-diverged seeds at each sparsity's slot, shifted by ``offset``; crosses at seeds
    at chance. False when every seed diverged."""
    included = group[group["status"] != DIVERGED]
    if included.empty:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: no run left")
        return False
    stats = 100 * included.groupby("sparsity")["test_accuracy"].agg(["mean", "min", "max"])
    xs = np.array([sparsities.index(sparsity) for sparsity in stats.index]) + offset
    axis.errorbar(xs, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]], fmt="o",
                  color=colour, markersize=5, capsize=2, linewidth=1.2, label=label, zorder=3)
    chance = included[included["status"] == COLLAPSED]
    if not chance.empty:
        axis.scatter([sparsities.index(sparsity) + offset for sparsity in chance["sparsity"]], 100 * chance["test_accuracy"],
                     marker="x", color="grey", s=14, zorder=4)
    return True


def _alpha_panels(alphas, width: float = 5.0, height: float = 4.2, rows: int = 1, **subplots):
    plt = _pyplot()
    figure, axes = plt.subplots(rows, len(alphas), figsize=(width * len(alphas), height * rows), sharey="row", squeeze=False,
                                **subplots)
    return figure, axes


def _percent_log_axis(axis) -> None:
    """A log x axis of percentages labelled 1, 2, 5, 10, ... rather than 10⁰, 2×10⁰."""
    axis.set_xscale("log")
    plain_log_ticks(axis.xaxis)


def plain_log_ticks(axis) -> None:
    """Ticks of a log-scaled x or y axis at 1, 2, 5 times powers of ten, labelled 0.5, 1, 2 rather than 5×10⁻¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0), numticks=15))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def _dense_lines(axis, dense: pd.DataFrame, colour="black") -> None:
    kept = dense[dense["status"] != DIVERGED]
    if not kept.empty:
        axis.axhline(100 * kept["test_accuracy"].mean(), color=colour, linestyle="--", linewidth=1,
                     label=line_label("dense", dense, "sparsity"))


#: the reference experiment's sparse methods (dense alone is black), told apart by marker too
REFERENCE_GREYS = ("dimgray", "darkgray", "silver")
REFERENCE_MARKERS = ("s", "^", "D")
CURVE_SOURCE = "Tanaka et al. 2020 (SynFlow), CIFAR-10"


def pai_accuracy_vs_weights_remaining(rows: pd.DataFrame, reference: pd.DataFrame, labels, scorers: dict, curves: pd.DataFrame,
                                      title: str):
    """Pruning at initialisation: one panel per α, a line per pai variant coloured by its scorer (solid: the
    model's own init; dash-dot: another init or a control), weights remaining on a log scale; the reference
    experiment's sparse methods dashed grey (one marker each), its dense run a black horizontal line.
    ``curves`` (published per-run accuracies, other dataset/model) get panels of their own, the same
    colour per scorer, never mixed with ours. Every panel spans the same weights-remaining range, so
    where our sparsities sit among the published ones is seen; one legend below serves all our panels."""
    swept = rows[rows["method"] == "pai"].groupby("variant")["sparsity"].nunique()
    if 2 * (swept > 1).sum() < len(swept):  # most variants at one sparsity (the default grid): rows, not stacked dots
        return pai_accuracy_at_one_sparsity(rows, reference, labels, scorers, title)
    plt = _pyplot()
    alphas = sorted(rows["alpha"].unique())
    models = sorted(curves["model"].unique())
    palette = {name: plt.get_cmap("tab10")(i % 10) for i, name in enumerate(sorted({*scorers.values(), *curves["method"]}))}
    figure, axes = _alpha_panels([*alphas, *models], width=3.8, height=4.6, layout="constrained")
    for axis, alpha in zip(axes[0], alphas):
        for variant in sorted(scorers):
            group = rows[(rows["method"] == "pai") & (rows["variant"] == variant) & (rows["alpha"] == alpha)]
            style = "-" if labels("pai", variant) == scorers[variant] else "-."  # dash-dot: told apart from solid at a glance
            _sparsity_line(axis, group, palette[scorers[variant]], labels("pai", variant), style)
        theirs = [key for key in dict.fromkeys(zip(reference["method"], reference["variant"])) if key[0] != "dense"]
        for colour, marker, (method, variant) in zip(REFERENCE_GREYS, REFERENCE_MARKERS, theirs):
            group = reference[(reference["method"] == method) & (reference["variant"] == variant) & (reference["alpha"] == alpha)]
            _sparsity_line(axis, group, colour, f"{labels(method, variant)} (reference)", "--", marker)
        _dense_lines(axis, reference[(reference["method"] == "dense") & (reference["alpha"] == alpha)])
        _chance_legend(axis, rows[rows["alpha"] == alpha])
        axis.set_title(f"ours (digits): {alpha_label(alpha)}", fontsize=10)
    for axis, model in zip(axes[0][len(alphas):], models):
        for method, group in curves[curves["model"] == model].groupby("method"):
            stats = group.groupby("sparsity")["top1_accuracy_percent"].agg(["mean", "min", "max"])
            xs = 100 * (1 - stats.index.to_numpy())
            axis.plot(xs, stats["mean"], color=palette[method], marker="o", markersize=3, label=f"{method} ({group['run'].nunique()} runs)")
            axis.fill_between(xs, stats["min"], stats["max"], color=palette[method], alpha=0.2)
        axis.set_title(wrapped(f"published: {CURVE_SOURCE} {model}; other dataset/model — not comparable", 3.4, 9), fontsize=9)
        _finish_panel(axis, "weights remaining (%)", "lower right", 8)
    for axis in axes[0][:len(alphas)]:
        _percent_log_axis(axis)
        axis.set_xlabel("weights remaining (%)")
        axis.grid(True, which="both", alpha=0.3)
    _same_x_range(axes[0])
    shared_legend(figure, axes[0][:len(alphas)])
    axes[0][0].set_ylabel(ACCURACY_LABEL)
    figure_title(figure, f"{title}: prune at init, then train the mask (line = mean over seeds, band = min–max; "
                    "solid = the model's init, dash-dot = another init or a control)")
    return figure


#: inches per row of the one-sparsity PaI figure
DOT_ROW_INCHES = 0.3


def pai_accuracy_at_one_sparsity(rows: pd.DataFrame, reference: pd.DataFrame, labels, scorers: dict, title: str):
    """Pruning at initialisation at one sparsity (the default grid): one row per variant, grouped by scorer (its
    shuffled and re-initialised controls under it), test accuracy on x: the mean over seeds with a min–max bar, one
    colour per α (labels.ALPHA_COLOURS) side by side; the reference experiment's sparse methods at their own
    sparsities below, its dense run the dashed black line."""
    plt = _pyplot()
    every = rows[rows["method"] == "pai"]
    sparsity = float(every.groupby("sparsity")["variant"].nunique().idxmax())  # the one most variants have
    pai = every[every["sparsity"] == sparsity]
    sweeps = [variant for variant, group in every.groupby("variant") if group["sparsity"].nunique() > 1]
    order = list(dict.fromkeys(scorers[variant] for variant in pai["variant"].drop_duplicates()))
    variants = sorted(pai["variant"].unique(), key=lambda variant: (order.index(scorers[variant]), labels("pai", variant)))
    entries = [(labels("pai", variant), pai[pai["variant"] == variant]) for variant in variants]
    theirs = reference[reference["method"] != "dense"]
    for (method, variant, at), group in theirs.groupby(["method", "variant", "sparsity"], sort=False):
        entries.append((f"{labels(method, variant)} at {100 * at:g}% (reference)", group))
    alphas = sorted({*rows["alpha"], *theirs["alpha"]})
    offsets = {alpha: 0.5 * ((index + 0.5) / len(alphas) - 0.5) for index, alpha in enumerate(alphas)}
    height = 1.6 + DOT_ROW_INCHES * len(entries)
    if sweeps:  # the variants also run at other sparsities: their sweep beside the rows
        figure, (axis, sweep_axis) = plt.subplots(1, 2, figsize=(12.5, max(height, 4.5)), layout="constrained",
                                                  width_ratios=(3, 2))
        _pai_sweep_panel(sweep_axis, every[every["variant"].isin(sweeps)], reference, labels)
    else:
        figure, axis = plt.subplots(figsize=(7.5, height), layout="constrained")
    for position, (_, group) in enumerate(entries):
        for alpha, at_alpha in group.groupby("alpha"):
            _dot(axis, at_alpha, position + offsets[alpha], alpha_colour(alpha),
                 line_label(alpha_label(alpha), at_alpha, "sparsity"))
    dense = reference[reference["method"] == "dense"]
    kept = dense[dense["status"] != DIVERGED]
    if not kept.empty:
        axis.axvline(100 * kept["test_accuracy"].mean(), color="black", linestyle="--", linewidth=1,
                     label=line_label("dense (reference)", dense, "sparsity"))
    _chance_legend(axis, rows)
    axis.set_yticks(range(len(entries)), [name for name, _ in entries], fontsize=8)
    axis.set_ylim(len(entries) - 0.5, -0.5)
    boundaries = [index + 0.5 for index in range(len(entries) - 1)
                  if index + 1 < len(variants) and scorers[variants[index]] != scorers[variants[index + 1]]]
    for boundary in [*boundaries, len(variants) - 0.5]:
        axis.axhline(boundary, color="0.8", linewidth=0.8, zorder=0)
    axis.set_xlabel(ACCURACY_LABEL)
    axis.grid(True, axis="x", alpha=0.3)
    axis.set_title(f"{100 * sparsity:g}% sparsity ({100 * (1 - sparsity):g}% of the weights kept)", fontsize=10)
    shared_legend(figure, [axis])
    figure_title(figure, f"{title}: prune at init, then train the mask (point = mean over seeds, bar = min–max)")
    return figure


def _pai_sweep_panel(axis, rows: pd.DataFrame, reference: pd.DataFrame, labels) -> None:
    """The PaI variants run at several sparsities: accuracy against the weights remaining (log), one colour per
    variant, a line style per α; the reference methods grey and dashed, dense the black dashed line; its own legend."""
    plt = _pyplot()
    keys = list(dict.fromkeys(zip(rows["variant"], rows["alpha"])))
    variants = list(dict.fromkeys(variant for variant, _ in keys))
    several_alphas = rows["alpha"].nunique() > 1
    for variant, alpha in keys:
        group = rows[(rows["variant"] == variant) & (rows["alpha"] == alpha)]
        name = labels("pai", variant) + (f", {alpha_label(alpha)}" if several_alphas else "")
        style = LINE_STYLES[sorted(rows["alpha"].unique()).index(alpha) % len(LINE_STYLES)]
        _sparsity_line(axis, group, plt.get_cmap("tab10")(variants.index(variant) % 10), name, style)
    theirs = [key for key in dict.fromkeys(zip(reference["method"], reference["variant"])) if key[0] != "dense"]
    for colour, marker, (method, variant) in zip(REFERENCE_GREYS, REFERENCE_MARKERS, theirs):
        group = reference[(reference["method"] == method) & (reference["variant"] == variant)]
        _sparsity_line(axis, group, colour, f"{labels(method, variant)} (reference)", "--", marker)
    _dense_lines(axis, reference[reference["method"] == "dense"])
    _percent_log_axis(axis)
    axis.set_xlabel("weights remaining (%)")
    axis.set_ylabel(ACCURACY_LABEL)
    axis.grid(True, which="both", alpha=0.3)
    axis.set_title("the variants run at several sparsities", fontsize=10)
    axis.legend(fontsize=8, loc="lower right")


def _dot(axis, group: pd.DataFrame, position: float, colour, label: str) -> None:
    """The mean and min–max bar of the non-diverged seeds at ``position`` (a row); grey crosses at seeds at chance."""
    included = group[group["status"] != DIVERGED]
    if included.empty:
        axis.plot([], [], color=colour, linestyle=":", label=f"{label}: no run left")
        return
    values = 100 * included["test_accuracy"]
    mean = values.mean()
    axis.errorbar([mean], [position], xerr=[[mean - values.min()], [values.max() - mean]], fmt="o", color=colour,
                  markersize=5, capsize=2, linewidth=1.2, label=label, zorder=3)
    chance = included[included["status"] == COLLAPSED]
    if not chance.empty:
        axis.scatter(100 * chance["test_accuracy"], [position] * len(chance), marker="x", color="grey", s=14, zorder=4)


def _same_x_range(axes) -> None:
    """Every panel over the union of their x ranges."""
    limits = np.array([axis.get_xlim() for axis in axes])
    for axis in axes:
        axis.set_xlim(limits[:, 0].min(), limits[:, 1].max())


def _sparsity_line(axis, group: pd.DataFrame, colour, label: str, style: str, marker: str = "o") -> None:
    if not group.empty:
        group = group.assign(weights_kept=1.0 - group["sparsity"])
        plot_line(axis, group, "weights_kept", colour, line_label(label, group, "weights_kept"), linestyle=style, marker=marker)


#: the ticket's line: wider than the controls and drawn over them, so a control on top of it never hides it
TICKET_WIDTH = 2.6


def lottery_ticket_vs_controls(rows: pd.DataFrame, labels, title: str):
    """Lottery tickets, one column per α. Top: test accuracy against the weights remaining at each level (log scale,
    100% on the left as in Frankle & Carbin), the ticket (wide, on top) and its controls; level 0 (dense) dashed.
    Bottom: each control minus the ticket, paired by seed and level (pp; mean, min–max band): the gap the LTH claim
    is about, on a scale of its own."""
    plt = _pyplot()
    alphas = sorted(rows["alpha"].unique())
    rows = rows.assign(weights_kept=1.0 - rows["actual_sparsity"])
    levels = rows[rows["level"].fillna(-1) > 0]
    start = rows[rows["level"] == 0]
    keys = list(dict.fromkeys(zip(levels["method"], levels["variant"])))
    ticket = ("lottery", "default") if ("lottery", "default") in keys else (keys[0] if keys else None)
    styles = dict(zip(keys, line_styles(len(keys))))
    figure, axes = plt.subplots(2, len(alphas), figsize=(5.6 * len(alphas), 7.2), sharex="col", squeeze=False,
                                height_ratios=[3, 2], layout="constrained")
    for column, alpha in enumerate(alphas):
        top, bottom = axes[0][column], axes[1][column]
        at_alpha = levels[levels["alpha"] == alpha]
        ticket_rows = at_alpha[(at_alpha["method"] == ticket[0]) & (at_alpha["variant"] == ticket[1])] if ticket else at_alpha[:0]
        for index, (method, variant) in enumerate(keys):
            group = at_alpha[(at_alpha["method"] == method) & (at_alpha["variant"] == variant)]
            if group.empty:
                continue
            chain = pd.concat([start[start["alpha"] == alpha], group]) if method == "lottery" else group  # tickets start dense
            is_ticket = (method, variant) == ticket
            style = styles[(method, variant)]
            name = labels(method, variant) + (" (the ticket)" if is_ticket else "")
            plot_line(top, chain, "weights_kept", style["colour"], line_label(name, chain, "weights_kept"),
                      linestyle=style["linestyle"] if not is_ticket else "-", marker=style["marker"],
                      zorder=20 if is_ticket else 4 + index, linewidth=TICKET_WIDTH if is_ticket else 1.3)
            if is_ticket:
                bottom.axhline(0, color=style["colour"], linewidth=TICKET_WIDTH, zorder=2)
            else:
                _difference_line(bottom, group, ticket_rows, style)
        _dense_lines(top, rows[(rows["level"] == 0) & (rows["alpha"] == alpha)])
        _chance_legend(top, at_alpha)
        top.set_title(alpha_label(alpha), fontsize=10)
        _difference_axis(bottom)
        bottom.set_ylabel(f"control − ticket (pp)\nlinear within ±{DIFFERENCE_LINEAR_PP:g}, log beyond" if column == 0 else "")
        for axis in (top, bottom):
            _percent_log_axis(axis)
            axis.grid(True, which="both", alpha=0.3)
        _level_ticks(bottom, pd.concat([start[start["alpha"] == alpha], ticket_rows]))
        bottom.set_xlabel("weights remaining (%), a tick per level")
        bottom.invert_xaxis()
    axes[0][0].set_ylabel(ACCURACY_LABEL)
    shared_legend(figure, axes[0])
    figure_title(figure, f"{title}: ticket vs controls (line = mean over seeds, band = min–max; "
                         "bottom: each control minus the ticket, same seed and level)")
    return figure


#: the difference panel is linear within ± this many pp and logarithmic beyond: a 1 pp gap and a 30 pp one both show
DIFFERENCE_LINEAR_PP = 2.0


#: the difference panel's ticks (those in view are drawn): every pp in the linear part, 1-2-5 beyond
DIFFERENCE_TICKS = (-100, -50, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50, 100)
#: at most this many level ticks on the lottery figure's x axis (every k-th level beyond)
MAX_LEVEL_TICKS = 8


def _difference_axis(axis) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_yscale("symlog", linthresh=DIFFERENCE_LINEAR_PP, linscale=1.5)
    axis.yaxis.set_major_locator(FixedLocator(DIFFERENCE_TICKS))  # the symlog locator skipped ±2 and 1 pp steps
    axis.yaxis.set_minor_locator(NullLocator())
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:+g}" if value else "0"))


def _level_ticks(axis, chain: pd.DataFrame) -> None:
    """Ticks at the weights remaining of the chain's levels (the ticket's), at most MAX_LEVEL_TICKS of them."""
    from matplotlib.ticker import NullLocator

    kept = sorted({round(100 * value, 1) for value in chain.groupby("level")["weights_kept"].mean()}, reverse=True)
    if kept:
        shown = kept[::-(-len(kept) // MAX_LEVEL_TICKS)]
        axis.set_xticks(shown, [f"{value:g}" for value in shown])
        axis.xaxis.set_minor_locator(NullLocator())


def _difference_line(axis, group: pd.DataFrame, ticket: pd.DataFrame, style: dict) -> None:
    """``group`` minus ``ticket`` in pp, paired by (level, seed) over the seeds neither diverged in; x: the ticket's
    weights remaining at that level."""
    def accuracy(frame):
        return frame[frame["status"] != DIVERGED].set_index(["level", "seed"])["test_accuracy"]

    difference = (100 * (accuracy(group) - accuracy(ticket))).dropna()
    if difference.empty:
        return
    stats = difference.groupby(level="level").agg(["mean", "min", "max"])
    xs = 100 * ticket.groupby("level")["weights_kept"].mean().loc[stats.index].to_numpy()
    axis.plot(xs, stats["mean"], color=style["colour"], linestyle=style["linestyle"], marker=style["marker"], markersize=3,
              linewidth=1.3, zorder=4)
    axis.fill_between(xs, stats["min"], stats["max"], color=style["colour"], alpha=0.2, zorder=3)


def _finish_panel(axis, xlabel: str, legend_at: str, legend_size: int) -> None:
    """A weights-remaining panel: percent log axis, grid, legend."""
    _percent_log_axis(axis)
    axis.set_xlabel(xlabel)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=legend_size, loc=legend_at)


def _finish(figure, axes, suptitle: str):
    axes[0][0].set_ylabel(ACCURACY_LABEL)
    figure_title(figure, suptitle)
    figure.tight_layout()
    return figure


#: the gradient-flow figure's dense line: wide enough to show a thin line drawn inside it
DENSE_WIDTH = 5.0
NORM_PANELS = {"grad_norm": "‖∂L/∂ trained parameters‖ (φ under Powerprop)", "grad_norm_theta": "‖∂L/∂θ‖ (effective weights)"}


def _step_axis(axis, first_step: float) -> None:
    """Steps linear up to the first probe, logarithmic after (ticks 0, 10, 20, 50, 100, ...): the first
    hundred steps get as much room as the last few hundred."""
    from matplotlib.ticker import FuncFormatter, NullFormatter, SymmetricalLogLocator

    axis.set_xscale("symlog", linthresh=first_step, linscale=0.5)
    axis.xaxis.set_major_locator(SymmetricalLogLocator(linthresh=first_step, base=10, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlim(left=-0.1 * first_step)  # the margin matplotlib adds spanned negative steps (ticks at -10, -20, -50)


def gradient_norm_vs_step(norms: pd.DataFrame, labels, title: str):
    """Gradient flow: the norm of the masked gradient on a fixed held-out batch against the training step,
    one line per method [variant] (mean over non-diverged seeds, min–max band), one column per α; the
    second row repeats it for the effective weights θ, only when some α ≠ 1 (at α = 1, θ is φ: the same panel)."""
    alphas = sorted(norms["alpha"].unique())
    panels = NORM_PANELS if any(alpha != 1 for alpha in alphas) else dict(list(NORM_PANELS.items())[:1])
    keys = list(dict.fromkeys(zip(norms["method"], norms["variant"], norms["sparsity"])))
    styles = line_styles(len(keys))
    first_step = norms.loc[norms["step"] > 0, "step"].min() if (norms["step"] > 0).any() else 1
    figure, axes = _alpha_panels(alphas, width=6.0, height=3.8, rows=len(panels), layout="constrained")
    for row, (column, ylabel) in enumerate(panels.items()):
        for axis, alpha in zip(axes[row], alphas):
            for index, (style, (method, variant, sparsity)) in enumerate(zip(styles, keys)):
                group = norms[(norms["method"] == method) & (norms["variant"] == variant) & (norms["sparsity"] == sparsity)
                              & (norms["alpha"] == alpha)]
                if not group.empty:
                    label = f"{labels(method, variant)}" + ("" if sparsity == 0 else f" at {100 * sparsity:g}%")
                    # dense wide and pale beneath thin lines of their own style: a method that is still dense
                    # (GMP before it prunes) is seen inside it, and neither hides the other
                    dense = method == "dense"
                    plot_line(axis, group, "step", style["colour"], line_label(label, group, "step"), scale=1.0, y=column,
                              linestyle=LINE_STYLES[index % len(LINE_STYLES)], marker=style["marker"],
                              zorder=3 if dense else 4 + index, linewidth=DENSE_WIDTH if dense else 1.5, alpha=0.45 if dense else 1.0)
            axis.set_yscale("log")
            plain_log_ticks(axis.yaxis)
            _step_axis(axis, float(first_step))
            axis.set_xlabel("training step (linear to the first probe, log after)")
            axis.set_title(f"{alpha_label(alpha)}: {ylabel}", fontsize=9)
            axis.grid(True, which="both", alpha=0.3)
        axes[row][0].set_ylabel("gradient norm (log)")
    shared_legend(figure, axes)
    figure_title(figure, f"{title}: gradient norm on a fixed validation batch (line = mean over seeds, band = min–max)")
    return figure
