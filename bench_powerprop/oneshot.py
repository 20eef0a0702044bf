"""One-shot magnitude pruning after training, no retraining (the Powerprop notebook's protocol)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from bench_powerprop.data.tasks import build_task
from bench_powerprop.pruning import apply_masks, magnitude_masks, overall_sparsity
from bench_powerprop.train import load_trained_model

METHOD_NAME = "oneshot"


def keep_levels(levels) -> list[float]:
    """Fractions of weights kept: an explicit list, or ``{"geomspace": [start, stop, num]}``."""
    if isinstance(levels, dict):
        start, stop, num = levels["geomspace"]
        return [float(x) for x in np.geomspace(start, stop, int(num))]
    return [float(x) for x in levels]


def prune_sweep(model_path, metrics: dict, prune_cfg: dict) -> pd.DataFrame:
    """Accuracy of the trained model pruned to every keep level (one row per level)."""
    model, spec = load_trained_model(model_path)
    task = build_task(spec["data"])
    rows = []
    for keep in keep_levels(prune_cfg["keep_levels"]):
        pruned = copy.deepcopy(model)
        masks = magnitude_masks(pruned, keep, scope=prune_cfg.get("scope", "layerwise"),
                                last_layer_keep_factor=prune_cfg.get("last_layer_keep_factor", 2.0))
        apply_masks(pruned, masks)
        rows.append({
            "experiment": spec["experiment"],
            "method": METHOD_NAME,
            "trained_with": spec["method"],
            "alpha": spec["alpha"],
            "keep": keep,
            "sparsity": 1.0 - keep,
            "actual_sparsity": overall_sparsity(pruned),
            "seed": spec["seed"],
            "val_accuracy": task.accuracy(pruned, "val"),
            "test_accuracy": task.accuracy(pruned, "test"),
            "diverged": metrics["diverged"],
            "spec_hash": metrics["spec_hash"],
        })
    return pd.DataFrame(rows)
