"""The one object every method hook receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from bench_powerprop.cell_spec import CellSpec
from bench_powerprop.methods.base import Phase
from bench_powerprop.powerprop import capture_dense_gradients, captured_dense_gradients
from bench_powerprop.scoring import ScoringInputs
from bench_powerprop.training.lineage import Lineage, SnapshotStore


def scoring_seed(seed: int) -> int:
    """Seed of the scoring batch stream, decorrelated from the training batches' seed."""
    return (int(seed) * 7_919 + 0xC0FFEE) % (2**63 - 1)


@dataclass
class TrainingContext:
    """State of the run as the methods see it.

    ``step`` counts optimizer iterations over the whole run; ``phase_step`` within the current
    phase. ``task`` is the task of the current phase (``phase.task`` indexes ``tasks``).
    ``scoring_batches`` draws from a separate seeded stream over the training split, so scoring
    (pruning at initialisation, saliency, gradient-flow probes) never changes the training batches.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    spec: CellSpec
    tasks: list
    loss_fn: Any
    snapshots: SnapshotStore
    lineage: Lineage
    strategy: Any
    phases: list[Phase]
    step: int = 0
    phase_index: int = 0
    phase_step: int = 0
    dense_gradients_requested: bool = False
    _scoring_sources: dict = field(default_factory=dict)

    @property
    def phase(self) -> Phase:
        return self.phases[self.phase_index]

    @property
    def task(self):
        return self.tasks[self.phase.task]

    @property
    def device(self) -> torch.device:
        return self.strategy.device

    # -- RigL's dense gradient ---------------------------------------------------------------
    def capture_dense_gradients(self) -> None:
        """Record the dense ∂L/∂θ of every layer in this step's backward pass."""
        capture_dense_gradients(self.model, True)
        self.dense_gradients_requested = True

    def dense_gradients(self) -> dict[str, torch.Tensor]:
        """The dense gradients captured this step (averaged over ranks under DDP)."""
        return captured_dense_gradients(self.model)

    def end_step(self) -> None:
        """Advance the counters; stop capturing dense gradients requested for this step."""
        if self.dense_gradients_requested:
            capture_dense_gradients(self.model, False)
            self.dense_gradients_requested = False
        self.step += 1
        self.phase_step += 1

    # -- scoring ---------------------------------------------------------------------------
    def scoring_batches(self, count: int, batch_size: int | None = None, task_index: int | None = None):
        """``count`` batches from the scoring stream of a task (default: the current phase's)."""
        index = self.phase.task if task_index is None else task_index
        size = batch_size or self.spec.train.batch_size
        key = (index, size)
        if key not in self._scoring_sources:
            self._scoring_sources[key] = self.tasks[index].train_batches(size, scoring_seed(self.spec.seed))
        source = self._scoring_sources[key]
        return [tuple(tensor.to(self.device) for tensor in source.next_batch()) for _ in range(count)]

    def scoring_inputs(self, batches: int, generator: torch.Generator | None = None, mask=None) -> ScoringInputs:
        return ScoringInputs(batches=self.scoring_batches(batches), loss_fn=self.loss_fn, generator=generator, mask=mask)

    def scoring_state(self) -> dict:
        return {key: source.state_dict() for key, source in self._scoring_sources.items()}

    def load_scoring_state(self, state: dict) -> None:
        for (index, size), source_state in state.items():
            source = self.tasks[index].train_batches(size, scoring_seed(self.spec.seed))
            source.load_state_dict(source_state)
            self._scoring_sources[(index, size)] = source

