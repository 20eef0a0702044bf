"""The claims page's forest plot: one panel per judged comparison, each on its own metric's scale.

Per panel: the per-seed effects as dots (paired: each seed's difference; unpaired: each treatment
seed minus the baseline mean), the interval the verdict read as a bar with the mean effect on it,
zero as a solid line and, for margins, dashed lines (±m for equivalence, −m for non-inferiority).
The bar's colour is the verdict. Claims that were not run have no panel (the page lists them).
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import pandas as pd

from bench_powerprop.io import save_figure_atomic
from bench_powerprop.reporting import statistics as st

VERDICT_COLOURS = {st.REPRODUCES: "#1b7837", st.DOES_NOT_REPRODUCE: "#b2182b", st.INCONCLUSIVE: "#7f7f7f"}
PANEL_HEIGHT = 0.42
#: inches above the panels kept for the two-line title
TITLE_HEIGHT = 0.5


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panel_label(row: dict) -> str:
    part = f" [{row['part']}]" if row["part"] else ""
    label = f"{row['key']} {row['experiment']}{part}"
    return label if len(label) <= 70 else label[:67] + "…"


def margin_lines(row: dict) -> list[float]:
    if row["test"] == st.EQUIVALENCE:
        return [-row["margin"], row["margin"]]
    return [-row["margin"]] if row["margin"] else []


def draw_panel(axis, row: dict) -> None:
    seeds = json.loads(row["seed_effects"])
    colour = VERDICT_COLOURS.get(row["verdict"], "#7f7f7f")
    axis.axvline(0.0, color="black", linewidth=0.8)
    for margin in margin_lines(row):
        axis.axvline(margin, color="black", linewidth=0.8, linestyle="--")
    if math.isfinite(row["low"]):
        axis.plot([row["low"], row["high"]], [0, 0], color=colour, linewidth=3, solid_capstyle="butt")
    axis.plot([row["effect"]], [0], marker="D", color=colour, markersize=5)
    axis.plot(seeds, [0.22] * len(seeds), linestyle="none", marker="o", markersize=3, color="#2166ac", alpha=0.8)
    values = [0.0, row["effect"], *seeds, *margin_lines(row)] + ([row["low"], row["high"]] if math.isfinite(row["low"]) else [])
    low, high = min(values), max(values)
    pad = 0.08 * (high - low) or 1.0
    axis.set_xlim(low - pad, high + pad)
    axis.set_ylim(-0.4, 0.5)
    axis.set_yticks([])
    axis.tick_params(axis="x", labelsize=6, pad=1)
    axis.set_ylabel(panel_label(row), rotation=0, ha="right", va="center", fontsize=7)
    unit = f" ({row['unit']})" if isinstance(row["unit"], str) and row["unit"] else ""
    axis.text(1.01, 0.5, f"{row['verdict']}{unit}", transform=axis.transAxes, fontsize=6,
              color=colour, va="center")


def forest_figure(results: pd.DataFrame):
    plt = _pyplot()
    rows = [row for row in results.to_dict("records") if math.isfinite(row["effect"])]
    if not rows:
        figure, axis = plt.subplots(figsize=(6, 1.2))
        axis.axis("off")
        axis.text(0.5, 0.5, "no claim was judged (every claim: not run)", ha="center", va="center")
        return figure
    height = TITLE_HEIGHT + PANEL_HEIGHT * len(rows)
    figure, axes = plt.subplots(len(rows), 1, figsize=(8, height), squeeze=False)
    for axis, row in zip(axes[:, 0], rows):
        draw_panel(axis, row)
    figure.suptitle("Claims: per-seed effects (dots), interval (bar), zero (solid) and margins (dashed);\n"
                    "positive = the claimed direction; each panel on its metric's own scale", fontsize=8)
    figure.tight_layout(h_pad=0.3, rect=(0, 0, 1, 1 - TITLE_HEIGHT / height))  # the panels below the title
    return figure


def save(figure, path: Path) -> None:
    save_figure_atomic(figure, path, dpi=120, bbox_inches="tight")
    _pyplot().close(figure)


def data_uri(path: Path) -> str:
    """The PNG inline, so the standalone claims page shows it wherever it is opened."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
