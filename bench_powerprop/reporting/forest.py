"""The claims page's forest plot: the deciding comparisons grouped by unit, one shared x-scale per group.

One panel per unit (pp, ρ, log ratio, …), so effects in one unit are comparable at a glance (0.01 pp
looks as small as it is beside 60 pp). Per row: the per-seed effects as dots (paired: each seed's
difference; unpaired: each treatment seed minus the baseline mean), the interval the verdict read as
a bar with the mean effect on it (diamond), and the boundary the interval had to clear as a short
dashed tick (the smallest effect of interest, −m for non-inferiority, ±m for equivalence). Zero is
the solid line. The bar's colour is the verdict. Claims that were not run, and rows shown only beside
a verdict, have no row (the page lists them).
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pandas as pd

from bench_powerprop.io import save_figure_atomic
from bench_powerprop.reporting import statistics as st

VERDICT_COLOURS = {st.REPRODUCES: "#1b7837", st.DOES_NOT_REPRODUCE: "#b2182b", st.INCONCLUSIVE: "#7f7f7f",
                   st.INSUFFICIENT: "#e08214"}
ROW_HEIGHT = 0.24
#: inches of each panel kept for its title and x-axis
PANEL_EXTRA = 0.9
TITLE_HEIGHT = 0.3
WIDTH = 10.0
LABEL_CHARS = 72
DPI = 110
#: inches: the tallest the figure is drawn (2,310 px at DPI, under the report's 2,400 px with the tight bounding box)
MAX_HEIGHT = 21.0
#: the roles shown (``claims.BESIDE`` rows are in the page's tables only)
SHOWN_ROLE = "decides"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: "variant = snip vs variant = snip_shuffled: sparsity = 0.98" is drawn "snip vs snip_shuffled, sparsity 0.98", so rows
#: that differ only at the end are not cut to the same label
SAME_AXIS_COMPARISON = re.compile(r"(\w+) = (\S+) vs \1 = (\S+)")


def row_label(row: dict) -> str:
    part = row["part"] if isinstance(row["part"], str) else ""  # a part read back from claims.csv may be empty (NaN)
    part = SAME_AXIS_COMPARISON.sub(r"\2 vs \3", part).replace(" = ", " ").replace(": ", ", ")
    part = f" [{part}]" if part else ""
    label = f"{row['key']} {row['experiment']}{part}"
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def boundaries(row: dict) -> list[float]:
    """Where the interval had to be: ±m (equivalence), −m (non-inferiority) or the smallest effect of interest."""
    if row["test"] == st.EQUIVALENCE:
        return [-row["margin"], row["margin"]]
    if row["margin"]:
        return [-row["margin"]]
    effect = row.get("min_effect_value")
    return [effect] if isinstance(effect, float) and math.isfinite(effect) and effect else []


def unit_of(row: dict) -> str:
    return row["unit"] if isinstance(row["unit"], str) and row["unit"] else "no unit"


def draw_group(axis, unit: str, rows: list[dict]) -> None:
    values = [0.0]
    for position, row in enumerate(rows):
        y = -position
        colour = VERDICT_COLOURS.get(row["verdict"], "#7f7f7f")
        seeds = json.loads(row["seed_effects"])
        if math.isfinite(row["low"]):
            axis.plot([row["low"], row["high"]], [y, y], color=colour, linewidth=3, solid_capstyle="butt")
            values += [row["low"], row["high"]]
        axis.plot([row["effect"]], [y], marker="D", color=colour, markersize=4)
        axis.plot(seeds, [y + 0.25] * len(seeds), linestyle="none", marker="o", markersize=2.5, color="#2166ac", alpha=0.7)
        for boundary in boundaries(row):
            axis.plot([boundary, boundary], [y - 0.35, y + 0.35], color="black", linewidth=0.8, linestyle="--")
        values += [row["effect"], *seeds, *boundaries(row)]
    low, high = min(values), max(values)
    pad = 0.05 * (high - low) or 1.0
    axis.set_xlim(low - pad, high + pad)
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_ylim(-len(rows) + 0.4, 0.6)
    axis.set_yticks([-position for position in range(len(rows))], [row_label(row) for row in rows], fontsize=7)
    axis.tick_params(axis="x", labelsize=7)
    axis.set_xlabel(f"effect ({unit}); positive = the claimed direction", fontsize=7)
    axis.set_title(f"{unit}: {len(rows)} comparison{'s' * (len(rows) != 1)} on one scale", fontsize=8, loc="left")
    twin = axis.twinx()
    twin.set_ylim(axis.get_ylim())
    twin.set_yticks([-position for position in range(len(rows))], [row["verdict"] for row in rows], fontsize=6)
    for label, row in zip(twin.get_yticklabels(), rows):
        label.set_color(VERDICT_COLOURS.get(row["verdict"], "#7f7f7f"))


def forest_figure(results: pd.DataFrame):
    plt = _pyplot()
    shown = results if "role" not in results.columns else results[results["role"] == SHOWN_ROLE]
    rows = [row for row in shown.to_dict("records") if math.isfinite(row["effect"])]
    if not rows:
        figure, axis = plt.subplots(figsize=(6, 1.2))
        axis.axis("off")
        axis.text(0.5, 0.5, "no claim was judged (every claim: not run)", ha="center", va="center")
        return figure
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(unit_of(row), []).append(row)
    # rows get thinner past MAX_HEIGHT (a report shows a PNG of at most 2,400 px tall readably)
    row_height = min(ROW_HEIGHT, (MAX_HEIGHT - TITLE_HEIGHT - PANEL_EXTRA * len(groups)) / len(rows))
    heights = [row_height * len(group) + PANEL_EXTRA for group in groups.values()]
    height = TITLE_HEIGHT + sum(heights)
    figure, axes = plt.subplots(len(groups), 1, figsize=(WIDTH, height), squeeze=False, layout="constrained",
                                gridspec_kw={"height_ratios": heights})
    for axis, (unit, group) in zip(axes[:, 0], groups.items()):
        draw_group(axis, unit, group)
    figure.suptitle("Claims by unit: per-seed effects (dots), interval (bar), mean (diamond), zero (solid), the boundary "
                    "the interval must clear (dashed)", fontsize=8)
    return figure


def save(figure, path: Path) -> None:
    save_figure_atomic(figure, path, dpi=DPI, bbox_inches="tight")
    _pyplot().close(figure)


def data_uri(path: Path) -> str:
    """The PNG inline, so the standalone claims page shows it wherever it is opened."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
