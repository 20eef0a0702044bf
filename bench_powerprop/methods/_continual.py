"""Shared machinery of the continual-learning methods (``packnet``, ``efficient_packnet``; no registered method here).

A run learns the T tasks of a task sequence (``data: {name: permuted, tasks: T}``) one after the
other, as phases of one training run: per task t, a training phase of ``train.steps`` steps, then
(when ``retrain_steps`` > 0) a retraining phase with the task's mask, ``Phase("task3-retrain", ...)``.
Phase boundaries are checkpoints, so a run killed between or inside tasks resumes bitwise.

Per task t:

* training phase: the forward pass uses every weight; the backward mask (``masks.BACKWARD``)
  lets gradient reach only the *free* weights, those in no earlier task's mask;
* at its end the method chooses task t's mask (``choose_mask``: PackNet's pruning, EPN's search);
* retraining phase: forward mask = task t's mask, backward mask = the weights it newly claims;
* the task is *finished*: its mask and its own copy of every parameter and buffer that is not a
  Linear/Conv weight (biases, normalisation) are stored; the union of all task masks is frozen;
  every weight outside it is re-initialised (``reinit``) with fresh optimizer state; every task
  seen so far is evaluated with its own mask and its own biases (one row of the accuracy matrix).

**Biases and the output layer.** Masks cover every Linear/Conv layer, the output layer included,
so output weights are claimed and frozen per task like any other. Biases (and any other
non-weight parameter or buffer) are *per task*: each task trains its own copy, starting from the
previous task's values, and evaluating task j loads task j's copy. (PackNet's code instead keeps
per-task classifiers and fixes biases after the first task.)

**Frozen means unchanged.** The backward mask zeroes the gradient of frozen weights, but weight
decay and momentum would still move them; so their φ is restored after every optimizer step and
their optimizer state kept at zero (as Top-KAST does outside its set B). Masks never zero φ here
(``keeps_dense_phi``): weights of other tasks live outside the current mask.

**Evaluating task j** (``task_view``): a copy of the model with task j's mask as forward mask,
φ outside it zeroed, and task j's biases. Task j's weights and biases never change after task j
finished, so every later evaluation of task j gives bitwise the same outputs (tested).

Training FLOPs are not accounted (reported as dense): every step computes the dense backward and
masks the gradient afterwards.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._masked import mask_seed
from bench_powerprop.methods._regrowth import GROW_INITS, RegrowthInit, reset_optimizer_state
from bench_powerprop.methods.base import Method, Phase
from bench_powerprop.options import Options, one_of, option, resolve_step, step_or_fraction

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")
powerprop = LazyModule("bench_powerprop.powerprop")
scoring = LazyModule("bench_powerprop.scoring")

RETRAIN = "retrain"
SCORERS = ("magnitude", "random")


@dataclass(frozen=True)
class ContinualOptions(Options):
    scorer: str = option("magnitude", "ranking of the weights when a task's mask is chosen: magnitude (|θ|), or random "
                         "(the random-mask control)", check=one_of(*SCORERS))
    retrain_steps: int | float = option(0.25, "steps of retraining with the task's mask after it is chosen (a fraction of "
                                        "train.steps, or a step count; 0: no retraining)", check=step_or_fraction())
    reinit: str | None = option(None, "value given to the weights no task uses when a task is finished: zeros, initial "
                                "(their initial θ₀) or random (a draw from their layer's initial distribution); default "
                                "(null): zeros at α = 1 (the reference), initial at α > 1 (φ = 0 is a fixed point)",
                                check=one_of(*GROW_INITS, nullable=True))


#: ``reinit`` value that leaves the weights no task uses as training left them (the no-re-initialisation control)
KEEP = "keep"


def head_state(model) -> dict:
    """Copies of every parameter and buffer that is not a Linear/Conv weight or a mask (biases, norm statistics)."""
    layers = powerprop.weight_layers(model)
    return {key: value.detach().clone() for key, value in model.state_dict().items()
            if key not in layers and not key.endswith(powerprop.MASK_BUFFERS)}


def forward_view(model, forward):
    """A copy of ``model`` computing with ``forward`` as its forward mask (φ outside zeroed; None: every weight), no backward mask."""
    view = copy.deepcopy(model)
    masks.clear(view, masks.BACKWARD)
    if forward is None:
        masks.clear(view, masks.FORWARD)
    else:
        masks.install(view, forward, masks.FORWARD)
    return view


@no_grad
def load_head(model, head: dict) -> None:
    state = model.state_dict()
    for key, value in head.items():
        state[key].copy_(value)


class ContinualMethod(Method):
    """A task sequence learnt phase by phase with one frozen mask per task; subclasses choose the masks."""

    continual = True
    keeps_dense_phi = True
    structures = ("unstructured",)
    #: reinit used when the option is null: ``None`` means ``default_reinit(alpha)``
    default_reinit_mode: ClassVar[str | None] = None

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.num_tasks = int(cell.tasks)
        self.alpha = float(cell.alpha)
        self.retrain_steps = resolve_step(options.retrain_steps, self.total_steps)
        self.reinit = options.reinit or self.default_reinit(cell.alpha)
        self.generator = torch.Generator().manual_seed(mask_seed(seed))
        self.regrowth: RegrowthInit | None = None
        self.task_masks: list = []
        self.heads: list[dict] = []
        self.records: list[dict] = []
        self.evaluations: list[dict] = []
        self.pending = None
        self.pending_record: dict = {}
        self._frozen = None

    def default_reinit(self, alpha: float) -> str:
        """Free weights are trained from zero only where zero is not a fixed point (α = 1); else from θ₀."""
        return self.default_reinit_mode or ("zeros" if alpha == 1 else "initial")

    # -- phases ------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        phases = []
        for task in range(self.num_tasks):
            phases.append(Phase(f"task{task + 1}", self.total_steps, task))
            if self.retrain_steps > 0:
                phases.append(Phase(f"task{task + 1}-{RETRAIN}", self.retrain_steps, task))
        return phases

    @staticmethod
    def is_retraining(ctx) -> bool:
        return ctx.phase.name.endswith(RETRAIN)

    @staticmethod
    def ends_task(ctx) -> bool:
        following = ctx.phase_index + 1
        return following == len(ctx.phases) or ctx.phases[following].task != ctx.phase.task

    # -- lifecycle -------------------------------------------------------------------------
    def setup(self, ctx) -> None:
        if len(ctx.tasks) != self.num_tasks:
            raise ValueError(f"{self.registry_name}: the data has {len(ctx.tasks)} tasks, the method was planned for {self.num_tasks}")
        self.regrowth = None if self.reinit == KEEP else RegrowthInit(self.reinit, ctx.model)  # θ₀ of the fresh model

    def on_phase_start(self, ctx) -> None:
        used = self.used(ctx.model)
        if self.is_retraining(ctx):
            self.install(ctx, self.pending, self.pending - used)
        else:
            self.install(ctx, None, ~used)

    def on_phase_end(self, ctx) -> None:
        if not self.is_retraining(ctx):
            self.pending, self.pending_record = self.choose_mask(ctx)
        if self.ends_task(ctx):
            self.finish_task(ctx, self.pending, self.pending_record)
            self.pending, self.pending_record = None, {}

    def choose_mask(self, ctx):
        """Task ``len(self.task_masks)``'s mask (a ``Mask`` over every weight layer) and what to record about the choice."""
        raise NotImplementedError

    # -- masks -----------------------------------------------------------------------------
    def used(self, model):
        """The union of the finished tasks' masks (all False before the first task is finished)."""
        union = masks.Mask({name: torch.zeros(shape, dtype=torch.bool) for name, shape in masks.layer_shapes(model).items()})
        for mask in self.task_masks:
            union = union | mask
        return union

    def install(self, ctx, forward, backward) -> None:
        """Forward mask (None: every weight) and backward mask; φ is never zeroed by a mask here."""
        if forward is None:
            masks.clear(ctx.model, masks.FORWARD)
        else:
            masks.install(ctx.model, forward, masks.FORWARD, zero_masked=False)
        masks.install(ctx.model, backward, masks.BACKWARD)
        self._frozen = None

    def scores(self, ctx) -> dict:
        """Scores of the configured scorer (``random`` draws from the method's own seeded generator)."""
        return scoring.score(self.options.scorer, ctx.model, scoring.ScoringInputs(generator=self.generator))

    @no_grad
    def finish_task(self, ctx, mask, record: dict) -> None:
        previous = self.used(ctx.model)
        used = previous | mask
        self.task_masks.append(mask)
        self.heads.append(head_state(ctx.model))
        self.records.append({"task": len(self.task_masks), "capacity": mask.density(), "capacity_new": (mask - previous).density(),
                             "capacity_reused": (mask & previous).density(), "capacity_total": used.density(), **record})
        self.reinitialise(ctx, ~used)
        self.install(ctx, mask, ~used)
        self.evaluate_seen(ctx)

    @no_grad
    def reinitialise(self, ctx, where) -> None:
        if self.regrowth is None:  # reinit: keep — the free weights go on from their trained values
            return
        for name, layer in powerprop.weight_layers(ctx.model).items():
            if where[name].any():
                layer.weight[where[name]] = self.regrowth.phi_values(name, layer, where[name], self.generator)
                reset_optimizer_state(ctx.optimizer, layer.weight, where[name])

    # -- frozen weights stay bitwise unchanged ---------------------------------------------------
    def after_backward(self, ctx) -> None:
        if self._frozen is None:
            backward = masks.backward_mask(ctx.model)
            layers = powerprop.weight_layers(ctx.model)
            self._frozen = {name: (~backward[name], layers[name].weight.detach().clone())
                            for name in layers if not backward[name].all()}

    @no_grad
    def after_step(self, ctx) -> None:
        layers = powerprop.weight_layers(ctx.model)
        for name, (frozen, values) in self._frozen.items():
            weight = layers[name].weight
            weight.copy_(torch.where(frozen, values, weight))
            reset_optimizer_state(ctx.optimizer, weight, frozen)

    # -- evaluation --------------------------------------------------------------------------
    def task_view(self, model, task: int):
        """A copy of ``model`` as task ``task`` (0-based) computes: its mask (φ outside zeroed) and its biases."""
        view = forward_view(model, self.task_masks[task])
        load_head(view, self.heads[task])
        return view

    def evaluate_seen(self, ctx) -> None:
        """One row of the accuracy matrix: every finished task, each with its own mask and biases."""
        trained = len(self.task_masks)
        for task in range(trained):
            view = self.task_view(ctx.model, task)
            self.evaluations.append({
                "trained_tasks": trained, "evaluated_task": task + 1, "steps": ctx.step,
                "val_accuracy": ctx.tasks[task].accuracy(view, "val"), "test_accuracy": ctx.tasks[task].accuracy(view, "test"),
                "capacity": self.task_masks[task].density(), "zero_fraction": masks.zero_fraction(view),
            })

    def accuracy_of(self, ctx, mask, split: str = "val") -> float:
        """Accuracy on the current task of the model with ``mask`` as forward mask (None: every weight), current biases."""
        return ctx.task.accuracy(forward_view(ctx.model, mask), split)

    # -- state and report ------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "generator": self.generator.get_state(),
            "task_masks": [mask.state_dict() for mask in self.task_masks],
            "heads": [{key: value.clone() for key, value in head.items()} for head in self.heads],
            "pending": None if self.pending is None else self.pending.state_dict(),
            "pending_record": copy.deepcopy(self.pending_record),
            "records": copy.deepcopy(self.records),
            "evaluations": copy.deepcopy(self.evaluations),
            "theta0_checksum": self.regrowth.checksum() if self.regrowth else 0.0,
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.task_masks = [masks.Mask.from_state_dict(mask) for mask in state["task_masks"]]
        self.heads = [dict(head) for head in state["heads"]]
        self.pending = None if state["pending"] is None else masks.Mask.from_state_dict(state["pending"])
        self.pending_record = copy.deepcopy(state["pending_record"])
        self.records, self.evaluations = copy.deepcopy(state["records"]), copy.deepcopy(state["evaluations"])
        self._frozen = None
        if self.regrowth is not None and not math.isclose(self.regrowth.checksum(), state["theta0_checksum"], rel_tol=1e-9):
            raise ValueError(f"{self.registry_name}: the initial weights rebuilt in setup differ from those of the checkpoint")

    def report(self, ctx) -> dict:
        return {**super().report(ctx), "continual": {"tasks": self.num_tasks, "reinit": self.reinit,
                                                     "task_capacity": self.records, "evaluations": self.evaluations}}
