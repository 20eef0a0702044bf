"""``gmp``: gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune", 2017, §3 eq. 1).

Reference code: the State of Sparsity baseline, google-research/google-research
``state_of_sparsity/sparse_rn50/imagenet_train_eval.py`` with TensorFlow's ``model_pruning``
(``pruning.py``: ``_setup_sparsity`` / ``conditional_mask_update_op``).

Sparsity follows the cubic schedule

    s_t = s_f + (s_i − s_f)·(1 − (t − t₀)/(t_end − t₀))³,   t₀ ≤ t ≤ t_end,

and the masks are recomputed every Δt = ``frequency`` steps from t₀ on, plus at t_end itself,
keeping the largest |θ| (the ``magnitude`` scorer on effective weights) with exact counts
(``bench_powerprop.masks.prune``). Pruned weights stay pruned. Masks are applied in
``before_forward`` of a pruning step, so that step already trains the pruned network.

Deviations: t₀ = 25% and t_end = 75% of training are this harness's choice (the paper leaves
them to the user; the last quarter lets the network recover); with t_end − t₀ not a multiple of
Δt the last pruning step is t_end, so s_f is always reached. Layerwise scope with every layer,
the output layer included, at the target sparsity (Zhu & Gupta prune all layers alike: ``dense_layers``
default ``none``); with dense layers (layerwise scope, no ``last_layer_keep_factor``) every pruning step
keeps them whole and the others keep what the step's sparsity of the whole network leaves.
"""

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._layer_budget import DenseLayersOptions, dense_layer_names
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import (
    OptionError,
    integer,
    number,
    one_of,
    option,
    resolve_step,
    step_or_fraction,
)
from bench_powerprop.scoring.base import SCOPES, check_scope

masks = LazyModule("bench_powerprop.masks")
budgets = LazyModule("bench_powerprop.budgets")
scoring = LazyModule("bench_powerprop.scoring")


@dataclass(frozen=True)
class GMPOptions(DenseLayersOptions):
    begin_step: int | float = option(0.25, "t₀: first pruning step (fraction of training or step)",
                                     check=step_or_fraction())
    end_step: int | float = option(0.75, "t_end: last pruning step, where s_f is reached", check=step_or_fraction())
    frequency: int = option(100, "Δt: steps between pruning steps (Zhu & Gupta: 100-1000 make no difference)",
                            check=integer(minimum=1))
    initial_sparsity: float = option(0.0, "s_i: sparsity at t₀", check=number(minimum=0, maximum=1, exclusive_maximum=True))
    scope: str = option("layerwise", "rank weights per layer (layerwise), over every layer together (global), or over the "
                        "layers before the output together (global_separate_output)", check=one_of(*SCOPES))
    last_layer_keep_factor: float = option(1.0, "the output layer keeps this many times the kept fraction",
                                           check=number(minimum=1))

    def check(self, where, cell):
        check_scope(self.scope, self.last_layer_keep_factor, where)
        if self.dense_layers not in (None, "none") and (self.scope != "layerwise" or self.last_layer_keep_factor != 1):
            raise OptionError(f"{where}.dense_layers: {self.dense_layers!r} needs scope layerwise and last_layer_keep_factor 1")
        if not cell.structure.unstructured and self.scope != "layerwise":
            raise OptionError(f"{where}.scope: structure {cell.structure.label()} is pruned layerwise only, got {self.scope!r}")
        if self.initial_sparsity > cell.sparsity:
            raise OptionError(f"{where}.initial_sparsity: {self.initial_sparsity:g} exceeds the cell's sparsity {cell.sparsity:g}")
        if resolve_step(self.end_step, cell.steps) < resolve_step(self.begin_step, cell.steps):
            raise OptionError(f"{where}.end_step: {self.end_step!r} is before begin_step {self.begin_step!r}")


@METHODS.register("gmp", options=GMPOptions)
class GMP(MaskedMethod):
    structures = ("unstructured", "n_of_m", "channel", "block")

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.begin = resolve_step(options.begin_step, self.total_steps)
        self.end = min(resolve_step(options.end_step, self.total_steps), max(0, self.total_steps - 1))

    def is_pruning_step(self, step: int) -> bool:
        return step == self.end or (self.begin <= step < self.end and (step - self.begin) % self.options.frequency == 0)

    def pruning_steps(self) -> list[int]:
        return [step for step in range(self.begin, self.end + 1) if self.is_pruning_step(step)]

    def sparsity_at(self, step: int) -> float:
        """The scheduled sparsity at a pruning step (s_i before t₀, s_f from t_end on)."""
        initial, final = self.options.initial_sparsity, self.sparsity
        if step < self.begin:
            return initial
        if step >= self.end:
            return final
        return final + (initial - final) * (1 - (step - self.begin) / (self.end - self.begin)) ** 3

    def setup(self, ctx):
        super().setup(ctx)
        names = list(self.numels)
        self.dense_names = dense_layer_names(names, self.dense_layers)
        if self.dense_names:
            self.target_counts = self.counts_at(self.sparsity, ctx.model)
            return
        fractions = masks.layer_keep_fractions(names, self.density, self.options.last_layer_keep_factor)
        counts = {name: masks.kept_count(self.numels[name], fractions[name]) for name in names}
        self.target_counts = masks.structured_counts(masks.layer_shapes(ctx.model), counts, self.structure)

    def counts_at(self, sparsity: float, model) -> dict[str, int]:
        """Per-layer counts at a scheduled sparsity with the dense layers whole (``budgets.plan_counts``, uniform),
        in whole groups of the structure."""
        shapes = masks.layer_shapes(model)
        counts = budgets.plan_counts(shapes, 1.0 - sparsity, "uniform", self.dense_names, count_dense=self.options.dense_in_budget)
        return masks.structured_counts(shapes, counts, self.structure)

    def before_forward(self, ctx):
        if not self.is_pruning_step(ctx.step):
            return
        sparsity = self.sparsity_at(ctx.step)
        if sparsity == 0 and masks.forward_mask(ctx.model) is None:
            return
        scores = scoring.score("magnitude", ctx.model)
        if self.dense_names:
            self.install(ctx, masks.keep_top(scores, self.counts_at(sparsity, ctx.model), self.structure))
            return
        self.install(ctx, masks.prune(scores, 1.0 - sparsity, self.options.scope, self.options.last_layer_keep_factor,
                                      structure=self.structure))

    def after_step(self, ctx):
        self.count_step(ctx)

    def report(self, ctx):
        return {**super().report(ctx), "pruning_steps": [self.begin, self.end]}
