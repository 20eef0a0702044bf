"""What a training method is: typed options, lifecycle hooks, per-step hooks (torch-free at import).

A method is one file in ``bench_powerprop/methods/``::

    @dataclass(frozen=True)
    class MyOptions(Options):
        frequency: int = option(100, "steps between mask updates", check=integer(minimum=1))

    @METHODS.register("mine", options=MyOptions)
    class Mine(MaskedMethod):
        def after_step(self, ctx): ...

Every hook receives one ``TrainingContext`` (``bench_powerprop.training.context``): the model,
optimizer, step, phase, task, loss function, spec, a separate seeded batch stream for scoring,
the run's snapshot store and its lineage. A new need is a new context attribute, never a new
signature.

Order of calls (``bench_powerprop.training.trainer``):

* ``setup(ctx)`` — on the freshly built model, every time the run starts (also on resume,
  before the checkpoint is restored): derive what depends only on the fresh model;
* ``prepare(ctx)`` — before step 0 of a fresh run only (never on resume): e.g. draw the initial
  mask, or score weights on data (pruning at initialisation);
* per phase (``phases()``; one phase "train" unless the method declares more, e.g. one per task
  of a continual-learning sequence or one per lottery level): ``on_phase_start(ctx)``, then per step
  ``before_forward`` → forward + ``loss_penalty`` → backward → ``after_backward`` →
  optimizer step unless ``takes_optimizer_step`` is False → ``after_step``; then ``on_phase_end``;
* ``on_train_end(ctx)`` after the last phase, before the final evaluation.

``state_dict``/``load_state_dict`` hold whatever the method needs to resume bitwise (masks live on
the model and are saved with it); ``report(ctx)`` adds entries to ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.options import CellFacts, Options
from bench_powerprop.registry import Registry
from bench_powerprop.structure import KINDS

METHODS = Registry("method", "bench_powerprop.methods")


@dataclass(frozen=True)
class Phase:
    """A stretch of training inside one run: ``steps`` optimizer steps on task ``task``."""

    name: str
    steps: int
    task: int = 0


class Method:
    """Base of all methods; by itself a dense run with no masks. Subclasses override hooks."""

    registry_name: ClassVar[str]
    Options: ClassVar[type[Options]]
    #: whether the grid's ``sparsity`` is a target this method reaches (False: a dense method)
    sparse: ClassVar[bool] = False
    #: whether the method uses an inherited mask (``mask_from`` in the config)
    accepts_mask_from: ClassVar[bool] = False
    #: whether masked weights keep their stored φ (Top-KAST masks only the forward); else φ is zeroed
    keeps_dense_phi: ClassVar[bool] = False
    #: whether the method's own penalty replaces ``train.weight_decay`` on the masked weights
    penalty_replaces_weight_decay: ClassVar[bool] = False
    #: whether the method learns a task sequence, one task per phase, with one mask per task (PackNet):
    #: its backward mask freezes earlier tasks' weights, which the forward pass still uses
    continual: ClassVar[bool] = False
    #: mask structures (``bench_powerprop.structure.KINDS``) the method honours; validation refuses the others.
    #: A method without masks has nothing to structure, so it runs under any.
    structures: ClassVar[tuple[str, ...]] = KINDS

    @classmethod
    def check_lineage(cls, options: Options, inherits: dict, cell) -> None:
        """Config-time rules about what a cell of this method inherits, before any job starts.

        ``inherits`` maps each declared relation (``init_from``, ``mask_from``) to its step; raise
        ``OptionError`` with one line when the combination makes no sense for this method.
        """

    @classmethod
    def report_label(cls, options: dict) -> str | None:
        """How tables and figures name a cell of this method from its options (as parsed, defaults filled in); None:
        by its method and variant."""
        return None

    @classmethod
    def paper_dense_layers(cls, options: Options, sparsity: float) -> str:
        """Which layers the method's paper keeps dense (``methods._layer_budget.DENSE_LAYER_POLICIES``)."""
        return "none"

    @classmethod
    def dense_layer_policy(cls, options: Options, sparsity: float) -> str | None:
        """The cell's dense layers: the ``dense_layers`` option, else the paper's; None for a dense method."""
        if not cls.sparse:
            return None
        chosen = getattr(options, "dense_layers", None)
        return chosen if chosen is not None else cls.paper_dense_layers(options, sparsity)

    def __init__(self, options: Options, cell: CellFacts, seed: int):
        self.options = options
        self.sparsity = float(cell.sparsity)
        self.total_steps = int(cell.steps)
        self.seed = int(seed)
        self.dense_layers = self.dense_layer_policy(options, self.sparsity)
        self.structure = cell.structure

    # -- lifecycle -------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        return [Phase("train", self.total_steps)]

    def setup(self, ctx) -> None:
        pass

    def prepare(self, ctx) -> None:
        pass

    def on_phase_start(self, ctx) -> None:
        pass

    def on_phase_end(self, ctx) -> None:
        pass

    def on_train_end(self, ctx) -> None:
        pass

    # -- every step ------------------------------------------------------------------------
    def before_forward(self, ctx) -> None:
        pass

    def loss_penalty(self, ctx):
        return None

    def after_backward(self, ctx) -> None:
        pass

    def takes_optimizer_step(self, ctx) -> bool:
        return True

    def after_step(self, ctx) -> None:
        pass

    # -- state and report ------------------------------------------------------------------
    def training_flops_fraction(self) -> float:
        """Training FLOPs relative to dense training of the same model (RigL's accounting)."""
        return 1.0

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def report(self, ctx) -> dict:
        return {"training_flops_fraction": self.training_flops_fraction(), "method_options": self.options.as_dict(),
                "dense_layers": self.dense_layers}
