"""Tidy result rows: one fixed column schema for every pipeline shape.

One row is one evaluation of one trained cell. Columns (``ROW_COLUMNS``):

* ``experiment``, ``method``, ``variant``, ``alpha``, ``sparsity``, ``seed``, ``level`` — the cell
  (its axes, ``bench_powerprop.cells``; ``level`` is empty except for the levels of an
  iterative-pruning chain, e.g. lottery tickets, whose ``sparsity`` is 0 and whose sparsity is
  ``actual_sparsity``). ``method`` is always the *training* method (``dense``, ``rigl``, ...);
  ``variant`` the named option set (``default`` when none); ``alpha`` the Powerprop exponent
  (1 = no Powerprop); ``sparsity`` the cell's sparsity axis, i.e. the target the training method
  was given (0 for dense training);
* ``evaluation`` — what was evaluated: ``trained`` (the model as training left it) or
  ``oneshot`` (the trained model after one-shot pruning, no retraining);
* ``target_sparsity`` — the fraction of weights the evaluated model was meant to lack: the cell's
  ``sparsity`` for ``trained`` rows, 1 − keep level for ``oneshot`` rows;
* ``actual_sparsity`` — the fraction of Linear/Conv weights the evaluated model's forward mask
  removes (the mask's density, exact by construction);
* ``zero_fraction`` — the fraction of effective weights θ that are exactly zero (≥
  ``actual_sparsity``: a regrown weight may sit at zero);
* ``test_accuracy``, ``val_accuracy`` — fractions in [0, 1];
* ``status`` — ``ok``; ``collapsed`` (test accuracy at chance: a real result, kept in means and
  flagged); or ``diverged`` (numerical failure during training: non-finite loss; excluded from
  means and counted);
* ``training_flops_fraction`` — training FLOPs relative to dense training (RigL's accounting);
* ``steps``, ``spec_hash`` — the steps trained and the hash of the cell's spec.

``collect_rows`` reads a manifest (written by the workflow) and refuses any result whose spec
hash is not the one the current config gives its cell.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench_powerprop.cells import CELL_COLUMNS
from bench_powerprop.io import read_json

ROW_COLUMNS = [
    *CELL_COLUMNS,
    "evaluation",
    "target_sparsity",
    "actual_sparsity",
    "zero_fraction",
    "test_accuracy",
    "val_accuracy",
    "status",
    "training_flops_fraction",
    "steps",
    "spec_hash",
]
TRAINED, ONESHOT = "trained", "oneshot"
#: the columns of a run's ``gradient_norms.csv`` (the gradient-flow probe, ``bench_powerprop.training.probes``)
GRADIENT_NORM_COLUMNS = ["step", "grad_norm", "grad_norm_theta"]
OK, COLLAPSED, DIVERGED = "ok", "collapsed", "diverged"


class StaleResultError(RuntimeError):
    """A result file was produced for a different spec than the cell it sits in."""


def checked_metrics(run_dir: str | Path, expected_hash: str) -> dict:
    try:
        metrics = read_json(Path(run_dir) / "metrics.json")
    except (OSError, ValueError) as error:
        raise StaleResultError(f"{run_dir}/metrics.json cannot be read ({error}): rerun the workflow to rebuild the cell") from None
    if metrics.get("spec_hash") != expected_hash:
        raise StaleResultError(
            f"{run_dir}/metrics.json has spec hash {metrics.get('spec_hash')!r} but the cell's spec hashes to "
            f"{expected_hash!r}: rerun the workflow (the cell is retrained) instead of mixing results"
        )
    return metrics


def status_of(diverged: bool, test_accuracy: float, chance_threshold: float) -> str:
    if diverged or not math.isfinite(test_accuracy):
        return DIVERGED
    return COLLAPSED if test_accuracy <= chance_threshold else OK


def trained_row(cell: dict, metrics: dict) -> dict:
    return {
        **{column: cell.get(column) for column in CELL_COLUMNS},
        "evaluation": TRAINED,
        "target_sparsity": cell["sparsity"],
        "actual_sparsity": metrics["actual_sparsity"],
        "zero_fraction": metrics["zero_fraction"],
        "test_accuracy": metrics["test_accuracy"],
        "val_accuracy": metrics["val_accuracy"],
        "status": status_of(metrics["diverged"], metrics["test_accuracy"], metrics["chance_threshold"]),
        "training_flops_fraction": metrics.get("training_flops_fraction", math.nan),
        "steps": metrics["steps"],
        "spec_hash": metrics["spec_hash"],
    }


def oneshot_rows(cell: dict, metrics: dict, sweep: pd.DataFrame) -> list[dict]:
    if set(sweep["spec_hash"]) != {metrics["spec_hash"]}:
        raise StaleResultError(f"{cell['run_dir']}/oneshot_prune.csv was computed from another spec than {metrics['spec_hash']}")
    base = trained_row(cell, metrics)
    return [
        {**base, "evaluation": ONESHOT, **{key: level[key] for key in
                                            ("target_sparsity", "actual_sparsity", "zero_fraction", "test_accuracy", "val_accuracy")},
         "status": status_of(metrics["diverged"], level["test_accuracy"], metrics["chance_threshold"])}
        for level in sweep.to_dict("records")
    ]


def collect_rows(manifest: dict, evaluations: tuple[str, ...] = (TRAINED,)) -> pd.DataFrame:
    """Tidy rows of every cell of a manifest; ``oneshot`` also reads each cell's ``oneshot_prune.csv``."""
    rows = []
    for cell in manifest["cells"]:
        metrics = checked_metrics(cell["run_dir"], cell["spec_hash"])
        if TRAINED in evaluations:
            rows.append(trained_row(cell, metrics))
        if ONESHOT in evaluations:
            rows += oneshot_rows(cell, metrics, pd.read_csv(Path(cell["run_dir"]) / "oneshot_prune.csv"))
    return pd.DataFrame(rows, columns=ROW_COLUMNS).sort_values([*CELL_COLUMNS, "evaluation", "target_sparsity"], ignore_index=True)
