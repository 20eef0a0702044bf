"""Converged before judged (issue 28): whether each cell's training had converged, read from its ``train_log.csv``.

The criterion, printed on the claims page (``CRITERION``): take the logged training losses of the last
``WINDOW`` of the logged steps (at least ``MIN_ROWS`` rows), fit a least-squares line to log(loss)
against the step; the cell converged when that line changes the loss by less than ``TOLERANCE``
across the window. A loss that is not finite (a diverged run) has not converged. A log too short for the
window gives no answer (NaN), which the page shows as "—". Reporting only: the trainer is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bench_powerprop.cells import AXIS_NAMES

WINDOW = 0.2
TOLERANCE = 0.1
MIN_ROWS = 4
#: a loss of exactly 0 still has a logarithm
TINY_LOSS = 1e-12
CRITERION = (f"over the last {WINDOW:.0%} of logged steps the training loss changes by less than {TOLERANCE:.0%} "
             f"(the least-squares line of log loss against the step, across the window; at least {MIN_ROWS} logged "
             "rows in it; a non-finite loss has not converged)")
CONVERGED, LOSS_CHANGE = "converged", "loss_change"


def loss_change(steps: Iterable[float], losses: Iterable[float]) -> float:
    """The relative change of the training loss across the last ``WINDOW`` of the logged steps: the least-squares line
    of log(loss) against the step over the window, exp(slope × the window's length) − 1 (every logged loss counts, so
    one noisy batch moves it less than a difference of two points would). NaN: too few rows; inf: a non-finite loss."""
    log = pd.DataFrame({"step": list(steps), "loss": list(losses)}).dropna(subset=["step"]).sort_values("step", kind="stable")
    if log.empty:
        return math.nan
    first, last = log["step"].iloc[0], log["step"].iloc[-1]
    window = log[log["step"] >= last - WINDOW * (last - first)]
    if len(window) < MIN_ROWS:
        return math.nan
    loss = window["loss"].to_numpy(dtype=float)
    if not np.isfinite(loss).all():
        return math.inf
    step = window["step"].to_numpy(dtype=float)
    slope = np.polyfit(step, np.log(np.maximum(loss, TINY_LOSS)), 1)[0]
    return float(math.expm1(slope * (step[-1] - step[0])))


def converged(change: float) -> float:
    """1.0 / 0.0 by the criterion, NaN when the log gave no answer."""
    return math.nan if math.isnan(change) else float(abs(change) < TOLERANCE)


def axis_key(value) -> str:
    """One spelling of a cell axis value for both the manifest and the tidy tables (1 and 1.0, None and NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return repr(float(value))


def cell_convergence(cells: Iterable[Mapping]) -> pd.DataFrame:
    """One row per manifest cell (its axes, ``converged``, ``loss_change``), read from ``run_dir/train_log.csv``."""
    records = []
    for cell in cells:
        path = Path(cell["run_dir"]) / "train_log.csv"
        try:
            log = pd.read_csv(path, usecols=["step", "loss"])
            change = loss_change(log["step"], log["loss"])
        except (OSError, ValueError, KeyError):
            change = math.nan
        records.append({**{axis: axis_key(cell.get(axis)) for axis in AXIS_NAMES}, LOSS_CHANGE: change,
                        CONVERGED: converged(change)})
    return pd.DataFrame(records, columns=[*AXIS_NAMES, LOSS_CHANGE, CONVERGED])


def with_convergence(rows: pd.DataFrame, convergence: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with the ``converged`` flag of their cell (matched on the cell axes both have)."""
    keys = [axis for axis in AXIS_NAMES if axis in rows.columns]
    if not keys or convergence.empty:
        return rows
    left = rows.drop(columns=[CONVERGED], errors="ignore")
    spelled = pd.DataFrame({f"_{axis}": left[axis].map(axis_key) for axis in keys}, index=left.index)
    flags = convergence.drop_duplicates(subset=keys).rename(columns={axis: f"_{axis}" for axis in keys})
    merged = pd.concat([left, spelled], axis=1).merge(flags[[f"_{axis}" for axis in keys] + [CONVERGED]], how="left",
                                                      on=[f"_{axis}" for axis in keys])
    return merged.drop(columns=[f"_{axis}" for axis in keys]).set_axis(rows.index)
