"""Do lottery tickets re-learn their pruning solution? (Evci, Ioannou, Keskin & Dauphin, "Gradient flow in sparse
neural networks and how lottery tickets win", AAAI 2022: the section showing that lottery tickets re-learn the pruning
solution they are derived from, and its ensemble experiment.)

``solutions``: one row per lottery-kind cell at level ℓ ≥ 1 (``lottery``, ``lottery_reinit``, ``lottery_scratch``),
comparing its trained model with *the pruning solution* of its level — the trained model of level ℓ − 1 (the
ticket's ``mask_from`` parent) with the ticket's level-ℓ mask applied, i.e. the pruned network the ticket was cut
from. Every cell of a level (ticket and controls, same seed) is compared with the same pruning solution: a control
cell's ``mask_from`` is the ticket of its level, so the lineage is followed through cells of level ℓ until it reaches
level ℓ − 1, and the mask is that of the last level-ℓ cell on the way (the ticket). Columns:

* ``theta_distance`` = ‖θ − θ_prune‖₂ / ‖θ_prune‖₂ over every Linear/Conv weight (effective weights θ, masked
  entries zero) — *relative*, so that cells with different α (different weight scales) compare; the paper reports
  the L2 distance of the weights;
* ``disagreement``: the fraction of test examples whose predicted class (argmax of the logits) differs between the
  cell's model and the pruning solution.

``ensembles``: Evci et al.'s ensemble experiment (§4; google-research/rigl ``rigl_tf2``: tickets of one pruning
solution and scratch runs of its mask, each trained with another ``--seed``). One row per *start*: a lottery-kind cell
of ``replicate`` 0 paired with the cell of ``replicate`` 1 that has the same method, α, level, seed and every other
option — two tickets of one pruning solution (same mask, same rewound weights, two batch orders), or two
``lottery_reinit`` solutions of one mask (two fresh draws, two batch orders). Each cell is in at most one pair, so the
rows are independent. ``ensemble_gain`` = test accuracy of the averaged-softmax ensemble of the two models minus the
mean of their two test accuracies; the row carries the replicate-0 cell's key.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from bench_powerprop import masks
from bench_powerprop.io import write_csv_atomic
from bench_powerprop.powerprop import effective_weights

LOTTERY_METHODS = ("lottery", "lottery_reinit", "lottery_scratch")
KEY_COLUMNS = ["method", "variant", "alpha", "level", "seed"]
SOLUTION_COLUMNS = [*KEY_COLUMNS, "theta_distance", "disagreement"]
ENSEMBLE_COLUMNS = [*KEY_COLUMNS, "ensemble_gain"]


@dataclass
class Trained:
    """A trained model and its spec, with a cache of its test-set logits."""

    model: torch.nn.Module
    spec: dict
    _logits: torch.Tensor | None = None

    @classmethod
    def load(cls, path: str | Path) -> Trained:
        from bench_powerprop.training.checkpointing import load_trained_model

        model, spec = load_trained_model(Path(path))
        return cls(model.eval(), spec)

    @property
    def level(self) -> int:
        return self.spec.get("level", -1)

    def mask_parent_path(self) -> str:
        return self.spec["lineage"]["mask_from"]["path"]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        if self._logits is None:
            with torch.no_grad():
                self._logits = self.model(features)
        return self._logits


class Models:
    """Every model read once (a pruning parent serves several cells)."""

    def __init__(self):
        self._loaded: dict[str, Trained] = {}

    def __getitem__(self, path: str | Path) -> Trained:
        key = str(path)
        if key not in self._loaded:
            self._loaded[key] = Trained.load(key)
        return self._loaded[key]


def test_split(spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    from bench_powerprop.data.tasks import build_task

    task = build_task(spec["data"])
    if not hasattr(task, "splits"):
        raise ValueError(f"lottery solutions: dataset {spec['data']['name']!r} holds no in-memory test split")
    return task.splits.split("test")


def pruning_solution(cell: Trained, models: Models) -> Trained:
    """The level ℓ − 1 model the cell's ticket was pruned from, with the ticket's mask installed (a new model)."""
    ticket, parent = cell, models[cell.mask_parent_path()]
    while parent.level >= cell.level:
        ticket, parent = parent, models[parent.mask_parent_path()]
    model = copy.deepcopy(parent.model)
    masks.install(model, masks.forward_mask(ticket.model))
    return Trained(model.eval(), parent.spec)


def relative_distance(model, reference) -> float:
    """‖θ − θ_ref‖₂ / ‖θ_ref‖₂ over every Linear/Conv weight."""
    mine, theirs = effective_weights(model), effective_weights(reference)
    difference = sum(float(((mine[name].double() - theta.double()) ** 2).sum()) for name, theta in theirs.items())
    norm = sum(float((theta.double() ** 2).sum()) for theta in theirs.values())
    return (difference / norm) ** 0.5


def cell_key(cell: dict) -> dict:
    return {column: cell.get(column) for column in KEY_COLUMNS}


def solution_rows(manifest: dict, models: Models | None = None) -> pd.DataFrame:
    models = models or Models()
    rows, features = [], None
    for cell in manifest["cells"]:
        if cell["method"] not in LOTTERY_METHODS or cell.get("level", 0) < 1:
            continue
        trained = models[Path(cell["run_dir"]) / "model.pt"]
        if features is None:
            features, _ = test_split(trained.spec)
        solution = pruning_solution(trained, models)
        disagreement = float((trained.logits(features).argmax(1) != solution.logits(features).argmax(1)).double().mean())
        rows.append({**cell_key(cell), "theta_distance": relative_distance(trained.model, solution.model),
                     "disagreement": disagreement})
    return pd.DataFrame(rows, columns=SOLUTION_COLUMNS)


def start_of(cell: dict, method_options: dict) -> tuple[tuple, int]:
    """(what a cell starts from: method, α, level, seed and its options but ``replicate``; its replicate)."""
    options = dict(method_options.get(cell["method"], {}).get(cell["variant"], {}))
    replicate = int(options.pop("replicate", 0))
    return (cell["method"], cell["alpha"], cell.get("level"), cell["seed"], json.dumps(options, sort_keys=True)), replicate


def replicate_pairs(cells: list[dict], method_options: dict) -> list[tuple[dict, dict]]:
    """Each replicate-0 cell with the replicate-1 cell of the same start (disjoint pairs; unmatched cells: none)."""
    by_replicate: dict[int, dict[tuple, dict]] = {0: {}, 1: {}}
    for cell in cells:
        start, replicate = start_of(cell, method_options)
        if replicate in by_replicate:
            by_replicate[replicate][start] = cell
    return [(cell, by_replicate[1][start]) for start, cell in by_replicate[0].items() if start in by_replicate[1]]


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probabilities.argmax(1) == labels).double().mean())


def ensemble_rows(manifest: dict, models: Models | None = None) -> pd.DataFrame:
    models = models or Models()
    cells = [cell for cell in manifest["cells"] if cell["method"] in LOTTERY_METHODS]
    rows, split = [], None
    for first, second in replicate_pairs(cells, manifest.get("method_options", {})):
        a, b = (models[Path(cell["run_dir"]) / "model.pt"] for cell in (first, second))
        if split is None:
            split = test_split(a.spec)
        features, labels = split
        p, q = a.logits(features).softmax(1), b.logits(features).softmax(1)
        gain = accuracy((p + q) / 2, labels) - (accuracy(p, labels) + accuracy(q, labels)) / 2
        rows.append({**cell_key(first), "ensemble_gain": gain})
    return pd.DataFrame(rows, columns=ENSEMBLE_COLUMNS)


def write_solution_tables(manifest: dict, out: dict[str, Path]) -> None:
    """Write the ``solutions`` and ``ensembles`` tables of a lottery experiment (paths by role)."""
    models = Models()
    write_csv_atomic(out["solutions"], solution_rows(manifest, models))
    write_csv_atomic(out["ensembles"], ensemble_rows(manifest, models))
