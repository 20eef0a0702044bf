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

``ensembles``: one row per lottery-kind cell (every level, controls included) with a partner: the cells of one
configuration (method, variant, α, level) sorted by seed, seed s_i paired with the next seed s_{i+1} and the last
with the first (cyclic), so each seed has one row; with only two seeds the pair appears once, under the lower seed;
with one seed there is no row. ``ensemble_gain`` = test accuracy of the averaged-softmax ensemble of the two models
minus the mean of their two test accuracies.
"""

from __future__ import annotations

import copy
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
        from bench_powerprop.training.trainer import load_trained_model

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


def seed_pairs(cells: list[dict]) -> list[tuple[dict, dict]]:
    """Each configuration's cells by seed, s_i with s_{i+1} and the last with the first (one pair when only two)."""
    groups: dict[tuple, list[dict]] = {}
    for cell in cells:
        groups.setdefault(tuple(cell.get(column) for column in KEY_COLUMNS[:-1]), []).append(cell)
    pairs = []
    for group in groups.values():
        group.sort(key=lambda cell: cell["seed"])
        if len(group) == 2:
            pairs.append((group[0], group[1]))
        elif len(group) > 2:
            pairs.extend((group[i], group[(i + 1) % len(group)]) for i in range(len(group)))
    return pairs


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probabilities.argmax(1) == labels).double().mean())


def ensemble_rows(manifest: dict, models: Models | None = None) -> pd.DataFrame:
    models = models or Models()
    cells = [cell for cell in manifest["cells"] if cell["method"] in LOTTERY_METHODS]
    rows, split = [], None
    for first, second in seed_pairs(cells):
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
