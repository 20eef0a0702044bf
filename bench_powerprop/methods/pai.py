"""``pai``: pruning at initialisation — score the initial weights once (on the scoring batches), fix the
mask, train it static. The scorer is any registered one: ``random``, ``magnitude`` (at init), ``snip``
(Lee et al. 2019), ``grasp`` (Wang et al. 2020), ``synflow`` (Tanaka et al. 2020, iterative, data-free),
``force`` (de Jorge et al. 2021, iterative); each file in ``bench_powerprop/scoring`` names its paper
section, reference code and deviations.

Protocol (as the references' "singleshot" experiments: Synaptic-Flow ``Experiments/singleshot.py``,
commit 9dfa57a): in ``prepare`` (fresh runs only) the scorer selects the kept fraction 1 − sparsity
of the weights on ``scoring_batches`` batches of the context's separate seeded scoring stream (so
training batches are the same as every other method's); then the ``init`` option may re-initialise
the kept weights (sparse-aware initialisation, Evci et al. 2022); then the mask is static: masked φ
is re-zeroed after every step. Scores are taken on the effective weights θ, so the method works
under Powerprop.

``scope`` (``masks.prune``): ``global`` (default) ranks every prunable layer together, the output
layer included, as Synaptic-Flow's ``--pruner-scope global`` without ``--dense-classifier`` and as
FORCE's ``get_mask``; ``global_separate_output`` ranks the layers before the output layer together
and gives the output layer its own budget min(1, factor·keep) (this harness's default before the
fidelity check); ``layerwise`` ranks each layer on its own.

``count``: ``exact`` (default) keeps exactly round(d·n) weights per ranked group, the count closest
to the configured sparsity; ``reference`` applies the scorer's reference code's rule (``masks.choose``)
— Synaptic-Flow's for random, magnitude, SNIP, GraSP and SynFlow (n − int((1 − d)·n) kept, weights
tying the threshold pruned), FORCE's for FORCE (every weight scoring >= the int(d·n)-th largest) — so
a reference mask can be reproduced weight for weight (``obd`` has no reference code: refused). The
masks of every scorer were compared with the reference code's, run unchanged on the same network,
weights and batch: ``docs/fidelity.md``.

Controls of Frankle, Dziugaite, Roy & Carbin, "Pruning neural networks at initialization: why are we missing the
mark?", ICLR 2021, the ablations "randomly shuffling" and "reinitializing" at initialisation): ``shuffle: within_layer`` keeps the
scorer's exact per-layer counts at uniformly random positions of each layer (the method's seeded generator);
``reinit: true`` replaces the weights by a fresh draw of the model's own initialiser (seed decorrelated from the
cell's, as ``lottery_reinit``) after scoring and before the mask is installed. Either, both, or neither; the
``init`` option applies afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._controls import redraw_weights
from bench_powerprop.methods._init import SparseInitOptions, check_init_not_inherited, init_suffix, initialise_kept
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import OptionError, boolean, integer, number, one_of, option, text
from bench_powerprop.scoring.base import COUNTS, SCOPES, check_scope

masks = LazyModule("bench_powerprop.masks")
scoring = LazyModule("bench_powerprop.scoring")


def scorer_settings():
    def check(value, where):
        if value is not None and not isinstance(value, dict):
            raise OptionError(f"{where}: must be a mapping of the scorer's options, got {value!r}")
        return value

    return check


@dataclass(frozen=True)
class PaiOptions(SparseInitOptions):
    scorer: str = option("snip", "registered scorer ranking the initial weights (python -m bench_powerprop list scorers)",
                         check=text(pattern=r"[a-z0-9_]+"))
    scorer_options: dict | None = option(None, "the scorer's own options (e.g. synflow: {rounds: 100}); defaults filled in",
                                         check=scorer_settings())
    scope: str = option("global", "global: every layer ranked together (as Synaptic-Flow and FORCE); global_separate_output: "
                        "the layers before the output together, the output layer its own budget; layerwise: each layer on its own",
                        check=one_of(*SCOPES))
    last_layer_keep_factor: float = option(1.0, "the output layer keeps min(1, factor × keep) of its weights (layerwise, "
                                           "global_separate_output)", check=number(minimum=1))
    count: str = option("exact", "weights kept of n: exact round(d·n), or reference, the scorer's reference code's count "
                        "(Synaptic-Flow n − int((1−d)·n); FORCE int(d·n))", check=one_of(*COUNTS))
    scoring_batches: int = option(1, "batches of the scoring stream the scorer sees (SNIP: one batch)", check=integer(minimum=1))
    scoring_batch_size: int | None = option(None, "their size (default: train.batch_size)", check=integer(minimum=1, nullable=True))
    shuffle: str = option("none", "within_layer: keep the scorer's per-layer counts at random positions of each layer "
                          "(Frankle et al. 2021 control); none: the scorer's positions", check=one_of("none", "within_layer"))
    reinit: bool = option(False, "re-draw the weights from the model's initialiser after scoring (Frankle et al. 2021 "
                          "control)", check=boolean())

    def check(self, where, cell):
        from bench_powerprop.scoring import SCORERS

        check_scope(self.scope, self.last_layer_keep_factor, where)
        if not cell.structure.unstructured:
            if self.scope != "layerwise":
                raise OptionError(f"{where}.scope: structure {cell.structure.label()} is pruned layerwise only, got {self.scope!r}")
            if self.scorer in SCORERS and not SCORERS.get(self.scorer).scores_once():
                raise OptionError(f"{where}.scorer: {self.scorer!r} scores in rounds, which take no structure "
                                  f"({cell.structure.label()}); use a one-shot scorer")
        if self.scorer in SCORERS and self.count == "reference" and SCORERS.get(self.scorer).reference_rounding is None:
            raise OptionError(f"{where}.count: scorer {self.scorer!r} has no reference code whose count could be reproduced "
                              f"(use exact), got 'reference'")
        if self.scorer not in SCORERS:
            raise OptionError(f"{where}.scorer: unknown scorer {self.scorer!r} (registered: {', '.join(SCORERS.names())})")
        parsed = SCORERS.options(self.scorer).parse(self.scorer_options, f"{where}.scorer_options")
        object.__setattr__(self, "scorer_options", parsed.as_dict())  # the hashed spec names every scorer setting


@METHODS.register("pai", options=PaiOptions)
class PruneAtInit(MaskedMethod):
    structures = ("unstructured", "n_of_m", "channel", "block")

    @classmethod
    def report_label(cls, options):
        """By its scorer, controls and init: 'snip, shuffled within layers + sparse-aware init'."""
        controls = ", shuffled within layers" if options["shuffle"] == "within_layer" else ""
        controls += ", reinit" if options["reinit"] else ""
        return f"{options['scorer']}{controls}{init_suffix(options)}"

    @classmethod
    def check_lineage(cls, options, inherits, cell):
        check_init_not_inherited(options, inherits)
        if "init_from" in inherits and options.reinit:
            raise OptionError("init_from gives this cell its weights, but reinit: true would replace them")

    def prepare(self, ctx):
        options = self.options
        inputs = scoring.ScoringInputs(batches=ctx.scoring_batches(options.scoring_batches, options.scoring_batch_size),
                                       loss_fn=ctx.loss_fn, generator=self.generator)
        chosen = scoring.scorer(options.scorer, options.scorer_options)
        structured = {} if self.structure.unstructured else {"structure": self.structure}
        mask = chosen.select(ctx.model, inputs, self.density, options.scope, options.last_layer_keep_factor, options.count,
                             **structured)
        if options.shuffle == "within_layer":
            mask = masks.random_mask(masks.layer_shapes(ctx.model), mask.layer_counts(), self.generator, self.structure)
        if options.reinit:
            redraw_weights(ctx, self.seed)
        self.install(ctx, mask)
        self.target_counts = masks.forward_mask(ctx.model).layer_counts()
        initialise_kept(ctx, options, self.generator)

    def after_step(self, ctx):
        self.count_step(ctx)
        masks.enforce(ctx.model)

    def report(self, ctx):
        return {**super().report(ctx), "scorer": self.options.scorer}

    def state_dict(self):
        return {**super().state_dict(), "target_counts": dict(self.target_counts)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.target_counts = dict(state["target_counts"])
