"""Tidy result rows: one fixed column schema for every pipeline shape.

One row is one evaluation of one trained cell. Columns (``ROW_COLUMNS``):

* ``experiment``, ``method``, ``variant``, ``alpha``, ``sparsity``, ``seed``, ``level`` — the cell
  (its axes, ``bench_powerprop.cells``; ``level`` is empty except for the levels of an
  iterative-pruning chain, e.g. lottery tickets, whose ``sparsity`` is 0 and whose sparsity is
  ``actual_sparsity``). ``method`` is always the *training* method (``dense``, ``rigl``, ...);
  ``variant`` the named option set (``default`` when none); ``alpha`` the Powerprop exponent
  (1 = no Powerprop); ``sparsity`` the cell's sparsity axis, i.e. the target the training method
  was given (0 for dense training);
* ``evaluation`` — what was evaluated: ``trained`` (the model as training left it),
  ``oneshot`` (the trained model after one-shot pruning, no retraining) or ``task`` (one task of a
  continual-learning run, with that task's own mask and biases, after some number of tasks);
* ``target_sparsity`` — the fraction of weights the evaluated model was meant to lack: the cell's
  ``sparsity`` for ``trained`` rows, 1 − keep level for ``oneshot`` rows, 1 − ``capacity`` for
  ``task`` rows (the method chose the task's mask);
* ``actual_sparsity`` — the fraction of Linear/Conv weights the evaluated model's forward mask
  removes (the mask's density, exact by construction);
* ``zero_fraction`` — the fraction of effective weights θ that are exactly zero (≥
  ``actual_sparsity``: a regrown weight may sit at zero);
* ``test_accuracy``, ``val_accuracy`` — fractions in [0, 1];
* ``status`` — ``ok``; ``collapsed`` (test accuracy at chance: a real result, kept in means and
  flagged); or ``diverged`` (numerical failure during training: non-finite loss; excluded from
  means and counted);
* ``training_flops_fraction`` — training FLOPs relative to dense training (RigL's accounting);
* ``steps``, ``spec_hash`` — the steps trained and the hash of the cell's spec;
* ``WEIGHT_COLUMNS`` — of the trained cell's weights, the same on every row of the cell
  (``bench_powerprop.training.weight_statistics`` defines them; empty for results written before
  they existed): ``near_zero_fraction`` (|θ| < 0.1 × the layer's initial std), its
  ``near_zero_first_layer`` / ``near_zero_last_layer``, the ``small_weight_movement`` of the initially
  small weights, the ``bimodality`` coefficient of θ, and
  the pairing fingerprints ``init_fingerprint`` (the seed's dense θ₀) and ``batch_fingerprint``
  (the first batches' example indices) with which the claims page checks that cells it pairs by
  seed really shared their start and their data order.

Rows of the ``continual`` kind (``evaluation == "task"``) carry ``CONTINUAL_COLUMNS`` after these:

* ``trained_tasks`` — how many tasks the run had learnt when the evaluation was made (1..T);
* ``evaluated_task`` — the task evaluated (1..``trained_tasks``; task 1 is the first learnt);
* ``capacity`` — the fraction of all Linear/Conv weights in the evaluated task's mask;
* ``capacity_new`` — the fraction of all weights the evaluated task claimed that no earlier task used;
* ``capacity_total`` — the fraction of all weights used by the ``trained_tasks`` tasks learnt (their masks' union);
* ``final`` — whether the run had learnt its whole sequence (``trained_tasks`` is its last task).

A continual run that diverged has rows with NaN accuracies and status ``diverged`` for every
(trained, evaluated) pair it did not reach.

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
WEIGHT_COLUMNS = ["near_zero_fraction", "near_zero_first_layer", "near_zero_last_layer", "small_weight_movement", "bimodality",
                  "init_fingerprint", "batch_fingerprint"]
ROW_COLUMNS += WEIGHT_COLUMNS
CONTINUAL_COLUMNS = ["trained_tasks", "evaluated_task", "capacity", "capacity_new", "capacity_total", "final"]
TRAINED, ONESHOT, TASK = "trained", "oneshot", "task"
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
        **{column: metrics.get(column) for column in WEIGHT_COLUMNS},
    }


def read_table(path, **options) -> pd.DataFrame:
    """A CSV the harness wrote; ``spec_hash`` read as text (a hash of hex digits only would read as an integer)."""
    return pd.read_csv(path, dtype={"spec_hash": str}, **options)


def read_sweep(run_dir) -> pd.DataFrame:
    """A cell's one-shot pruning sweep (``oneshot_prune.csv``)."""
    return read_table(Path(run_dir) / "oneshot_prune.csv")


UNSTRUCTURED = "unstructured"
#: the structured one-shot table's columns (``structured_rows``)
STRUCTURED_COLUMNS = [*ROW_COLUMNS, "structure"]


def oneshot_rows(cell: dict, metrics: dict, sweep: pd.DataFrame, structured: bool = False) -> list[dict]:
    """The sweep's unstructured rows (the one-shot table), or with ``structured`` its other structures' rows,
    each with its ``structure`` label."""
    if set(sweep["spec_hash"]) != {metrics["spec_hash"]}:
        raise StaleResultError(f"{cell['run_dir']}/oneshot_prune.csv was computed from another spec than {metrics['spec_hash']}")
    base = trained_row(cell, metrics)
    labels = sweep["structure"] if "structure" in sweep else pd.Series(UNSTRUCTURED, index=sweep.index)
    return [
        {**base, "evaluation": ONESHOT, **{key: level[key] for key in
                                            ("target_sparsity", "actual_sparsity", "zero_fraction", "test_accuracy", "val_accuracy")},
         "status": status_of(metrics["diverged"], level["test_accuracy"], metrics["chance_threshold"]),
         **({"structure": label} if structured else {})}
        for level, label in zip(sweep.to_dict("records"), labels) if (label != UNSTRUCTURED) == structured
    ]


def structured_rows(manifest: dict) -> pd.DataFrame:
    """The rows of every cell's structured one-shot sweep (``structure``: ``2:4``, ``channel``, ...)."""
    rows = []
    for cell in manifest["cells"]:
        metrics = checked_metrics(cell["run_dir"], cell["spec_hash"])
        rows += oneshot_rows(cell, metrics, read_sweep(cell["run_dir"]), structured=True)
    return pd.DataFrame(rows, columns=STRUCTURED_COLUMNS)


def task_rows(cell: dict, metrics: dict) -> list[dict]:
    """One row per (tasks learnt, task evaluated) of a continual run; pairs a diverged run never reached are NaN, diverged."""
    base = trained_row(cell, metrics)
    continual = metrics["continual"]
    capacity = {record["task"]: record for record in continual["task_capacity"]}
    measured = {(row["trained_tasks"], row["evaluated_task"]): row for row in continual["evaluations"]}
    rows = []
    for trained in range(1, continual["tasks"] + 1):
        for task in range(1, trained + 1):
            row = measured.get((trained, task))
            if row is None:
                rows.append({**base, "evaluation": TASK, "trained_tasks": trained, "evaluated_task": task, "status": DIVERGED,
                             "final": trained == continual["tasks"],
                             **dict.fromkeys(("target_sparsity", "actual_sparsity", "zero_fraction", "test_accuracy", "val_accuracy",
                                              "steps", "capacity", "capacity_new", "capacity_total"), math.nan)})
                continue
            rows.append({
                **base, "evaluation": TASK, "trained_tasks": trained, "evaluated_task": task,
                "target_sparsity": 1 - row["capacity"], "actual_sparsity": 1 - row["capacity"], "zero_fraction": row["zero_fraction"],
                "test_accuracy": row["test_accuracy"], "val_accuracy": row["val_accuracy"], "steps": row["steps"],
                "status": status_of(False, row["test_accuracy"], metrics["chance_threshold"]),
                "capacity": row["capacity"], "capacity_new": capacity[task]["capacity_new"],
                "capacity_total": capacity[trained]["capacity_total"], "final": trained == continual["tasks"],
            })
    return rows


def collect_rows(manifest: dict, evaluations: tuple[str, ...] = (TRAINED,)) -> pd.DataFrame:
    """Tidy rows of every cell of a manifest; ``oneshot`` also reads each cell's ``oneshot_prune.csv``;
    ``task`` rows (continual runs) have ``CONTINUAL_COLUMNS`` too."""
    rows = []
    for cell in manifest["cells"]:
        metrics = checked_metrics(cell["run_dir"], cell["spec_hash"])
        if TRAINED in evaluations:
            rows.append(trained_row(cell, metrics))
        if ONESHOT in evaluations:
            rows += oneshot_rows(cell, metrics, read_sweep(cell["run_dir"]))
        if TASK in evaluations:
            rows += task_rows(cell, metrics)
    extra = CONTINUAL_COLUMNS if TASK in evaluations else []
    order = [*CELL_COLUMNS, "evaluation", *(extra[:2] or ["target_sparsity"])]
    return pd.DataFrame(rows, columns=ROW_COLUMNS + extra).sort_values(order, ignore_index=True)
