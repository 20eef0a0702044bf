"""Evaluations of a trained cell beyond its training metrics: the one-shot pruning sweep.

``oneshot_sweep`` prunes the trained model once at every keep level (no retraining), as the
official Powerprop notebook does (google-deepmind/deepmind-research
``powerpropagation/powerpropagation.ipynb``): rank the effective weights θ by the configured
scorer (``magnitude`` by default), keep exactly round(keep·n) per layer (``layerwise``) or over the
hidden layers together (``global``), the output layer keeping min(1, factor·keep), and measure.

The prune config's ``structures`` adds a sweep per mask structure (``bench_powerprop.structure``) over the
same trained model, its rows marked in the ``structure`` column: N:M at its one density n/m, channel and
block at every keep level (layerwise, the output layer kept dense).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from bench_powerprop import masks
from bench_powerprop.config.prune import PruneOptions, prune_options
from bench_powerprop.data.tasks import build_task
from bench_powerprop.scoring import score
from bench_powerprop.training.checkpointing import load_trained_model

SWEEP_COLUMNS = ["keep", "target_sparsity", "actual_sparsity", "zero_fraction", "val_accuracy", "test_accuracy", "spec_hash",
                 "structure"]


def structure_levels(structure, levels: list[float]) -> list[float]:
    """The keep levels a structure is swept at: N:M has one, n/m."""
    return [structure.n / structure.m] if structure.kind == "n_of_m" else levels


def oneshot_sweep(model_path: Path, prune_cfg: dict | PruneOptions) -> pd.DataFrame:
    """Accuracy of the trained model pruned to every keep level (one row per level)."""
    prune = prune_cfg if isinstance(prune_cfg, PruneOptions) else prune_options(prune_cfg)
    model, spec = load_trained_model(model_path)
    task = build_task(spec["data"])
    scores = score(prune.scorer, model)
    rows = []
    for structure in prune.parsed_structures:
        for keep in structure_levels(structure, prune.levels):
            rows.append({**_pruned_row(model, spec, task, scores, keep, prune, structure), "structure": structure.label()})
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def _pruned_row(model, spec, task, scores, keep, prune: PruneOptions, structure) -> dict:
    pruned = copy.deepcopy(model)
    mask = masks.prune(scores, keep, prune.scope, prune.last_layer_keep_factor, structure=structure)
    masks.install(pruned, mask)
    return {
        "keep": keep,
        "target_sparsity": 1.0 - keep,
        "actual_sparsity": masks.masked_fraction(pruned, mask),
        "zero_fraction": masks.zero_fraction(pruned),
        "val_accuracy": task.accuracy(pruned, "val"),
        "test_accuracy": task.accuracy(pruned, "test"),
        "spec_hash": _spec_hash(spec),
    }


def _spec_hash(spec: dict) -> str:
    from bench_powerprop.identity import cell_hash

    return cell_hash(spec)
