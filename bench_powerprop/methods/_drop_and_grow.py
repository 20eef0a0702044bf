"""Drop-and-grow (RigL, SET): a random sparse start, then periodic mask updates that drop the
kept weights with the lowest ``drop_scores`` and grow as many with the highest ``grow_scores``.

Both scores are method hooks, as in google-research/rigl ``rigl/rigl_tf2/mask_updaters.py`` (commit
e947e1e: ``MaskUpdater.get_drop_scores`` over every masked layer, ``get_grow_scores``, one generic
update): a MEST- or GraNet-style method overrides a hook, not the update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._layer_budget import LayerDistributionOptions, plan_layer_counts, rigl_dense_layers
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods._regrowth import GROW_INITS, RegrowthInit, default_grow_init, reset_optimizer_state
from bench_powerprop.options import OptionError, integer, number, one_of, option, resolve_step, step_or_fraction

masks = LazyModule("bench_powerprop.masks")
powerprop = LazyModule("bench_powerprop.powerprop")
scoring = LazyModule("bench_powerprop.scoring")


@dataclass(frozen=True)
class DynamicSparseOptions(LayerDistributionOptions):
    """Options of drop-and-grow methods; defaults are RigL's (Evci et al. 2020 §3, §4.1)."""

    update_every: int = option(100, "ΔT: steps between mask updates (Evci et al. §4.1)", check=integer(minimum=1))
    drop_fraction: float = option(0.3, "fraction of active weights dropped per update at the start (§4.1)",
                                  check=number(minimum=0, maximum=1))
    drop_fraction_schedule: str = option("cosine", "decay of the drop fraction over [begin, end] (§3: cosine)",
                                         check=one_of("cosine", "constant"))
    begin_step: int | float = option(0, "first update step (fraction of training or step); the reference "
                                     "updates at every multiple of ΔT in [begin, end], step 0 included",
                                     check=step_or_fraction())
    end_step: int | float = option(0.75, "last update step, inclusive (T_end = 75% of training, §4.1)",
                                   check=step_or_fraction())
    grow_init: str | None = option(None, "value of grown weights: zeros | initial | random; default (null): "
                                   "zeros at α = 1 (published), initial at α > 1 (φ = 0 is a fixed point)",
                                   check=one_of(*GROW_INITS, nullable=True))
    update_mode: str = option("after_step", "after_step: the optimizer steps, then the mask is updated if the step "
                              "count after that step, t + 1, is an update step, with the drop fraction at t + 1 "
                              "(google-research/rigl rigl_tf2/train.py: ΔT optimizer steps between updates); "
                              "replace_step: an update iteration t takes no optimizer step (rigl/sparse_optimizers.py, "
                              "TF1), so ΔT − 1 optimizer steps lie between updates", check=one_of("replace_step", "after_step"))

    def check(self, where, cell):
        if resolve_step(self.end_step, cell.steps) < resolve_step(self.begin_step, cell.steps):
            raise OptionError(f"{where}.end_step: {self.end_step!r} is before begin_step {self.begin_step!r}")


class DynamicSparseMethod(MaskedMethod):
    """Random sparse start with ERK/uniform layer counts, then periodic drop-and-grow (RigL, SET).

    Mask updates happen where the update clock c (``update_clock``: t + 1 after the optimizer step of
    iteration t, t when the update replaces it) has begin ≤ c ≤ end and (c − begin) mod ΔT = 0, as in
    ``SparseSETOptimizerBase.is_mask_update_iter`` (google-research/rigl
    ``rigl/sparse_optimizers_base.py``) and ``UpdateSchedule.is_update_iter`` (``rigl_tf2``). Each update drops, per sparse layer,
    floor(d_t·n_active) active weights with the lowest ``drop_scores`` (default: |θ|, the ``magnitude``
    scorer, as RigL and SET) and grows as many by ``grow_scores``; d_t = drop_fraction·(1 + cos(π·t/(end − begin)))/2 (``cosine``, the
    reference's ``cosine_decay`` of the global step) or constant. Grown weights get ``grow_init``
    values and fresh optimizer state; per-layer counts never change.

    Deviation: the reference adds N(0, 1e-5) noise to the drop scores to break ties at random;
    here ties are broken by ``torch.topk`` (exact counts either way).

    Under a channel or block structure (``docs/structure.md``) whole groups are dropped and grown: floor(d_t·g)
    of a layer's g active groups with the lowest mean drop score, as many with the highest mean grow score.
    """

    structures = ("unstructured", "channel", "block")

    #: whether the grow criterion needs the dense gradient (RigL) or not (SET)
    uses_dense_grad: ClassVar[bool] = False
    #: RigL's policy (SET as RigL's baseline, Evci et al. 2020 §4.1; Mocanu et al.'s MLPs: every layer sparse)
    paper_dense_layers = classmethod(lambda cls, options, sparsity: rigl_dense_layers(options, sparsity))

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.begin = resolve_step(options.begin_step, self.total_steps)
        self.end = resolve_step(options.end_step, self.total_steps)
        self.alpha = cell.alpha
        self.grow_init = options.grow_init or default_grow_init(cell.alpha)
        self.regrowth: RegrowthInit | None = None
        self.mask_updates = 0
        self.regrown = 0

    def setup(self, ctx):
        super().setup(ctx)
        self.regrowth = RegrowthInit(self.grow_init, ctx.model)  # θ₀ before any mask zeroes φ
        counts = plan_layer_counts(ctx.model, self.density, self.options, self.dense_layers)
        self.target_counts = masks.structured_counts(masks.layer_shapes(ctx.model), counts, self.structure)

    def prepare(self, ctx):
        shapes = masks.layer_shapes(ctx.model)
        self.install(ctx, masks.random_mask(shapes, self.target_counts, self.generator, self.structure))

    def update_clock(self, step: int) -> int:
        """The step count the update condition and drop fraction read at iteration ``step``: t + 1 after the
        optimizer step (rigl_tf2 reads ``optimizer.iterations`` after ``apply_gradients``), t when the update
        replaces it."""
        return step + 1 if self.options.update_mode == "after_step" else step

    def is_update_step(self, step: int) -> bool:
        return self.begin <= step <= self.end and (step - self.begin) % self.options.update_every == 0

    def drop_fraction_at(self, step: int) -> float:
        base = self.options.drop_fraction
        if self.options.drop_fraction_schedule == "constant":
            return base
        decay_steps = max(1, self.end - self.begin)
        return base * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps)) / 2

    def before_forward(self, ctx):
        if self.uses_dense_grad and self.is_update_step(self.update_clock(ctx.step)):
            ctx.capture_dense_gradients()

    def takes_optimizer_step(self, ctx) -> bool:
        return not (self.options.update_mode == "replace_step" and self.is_update_step(self.update_clock(ctx.step)))

    def after_step(self, ctx):
        update = self.is_update_step(self.update_clock(ctx.step))
        self.count_step(ctx, dense_weight_grad=update and self.uses_dense_grad)
        if update:
            self.update_masks(ctx)

    def drop_scores(self, ctx) -> dict:
        """Scores of every sparse layer's weights ({layer name: tensor}); the lowest kept ones are dropped."""
        return scoring.score("magnitude", ctx.model)

    def grow_scores(self, ctx, name: str, layer):
        """Scores of one layer's weights; the highest of those not kept after the drop are grown."""
        raise NotImplementedError

    @no_grad
    def update_masks(self, ctx) -> None:
        fraction = self.drop_fraction_at(self.update_clock(ctx.step))
        current = masks.forward_mask(ctx.model)
        drop_scores = self.drop_scores(ctx)
        layers = powerprop.weight_layers(ctx.model)
        updated = {}
        for name, kept in current.items():
            units = masks.grouped(kept, self.structure).all(1)  # the weights themselves when unstructured
            n_active = int(units.sum())
            count = math.floor(fraction * n_active)  # RigL: n_prune = int(n_ones · drop_fraction)
            if count == 0 or n_active == units.numel():
                continue
            layer = layers[name]
            new_kept, grown = drop_and_grow_structured(kept, drop_scores[name], self.grow_scores(ctx, name, layer), count,
                                                       self.structure)
            layer.weight[grown] = self.regrowth.phi_values(name, layer, grown, self.generator)
            reset_optimizer_state(ctx.optimizer, layer.weight, new_kept != kept)
            updated[name] = new_kept
            self.regrown += int(grown.sum())
        if updated:
            self.install(ctx, masks.Mask(updated, self.structure))
        self.mask_updates += 1

    def report(self, ctx):
        return {**super().report(ctx), "mask_updates": self.mask_updates, "regrown_weights": self.regrown,
                "grow_init": self.grow_init}

    def state_dict(self):
        return {**super().state_dict(), "mask_updates": self.mask_updates, "regrown": self.regrown,
                "theta0_checksum": self.regrowth.checksum() if self.regrowth else 0.0}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.mask_updates, self.regrown = state["mask_updates"], state["regrown"]
        if self.regrowth is not None and not math.isclose(self.regrowth.checksum(), state["theta0_checksum"], rel_tol=1e-9):
            raise ValueError(f"{self.registry_name}: the initial weights rebuilt in setup differ from those of the checkpoint")


def drop_and_grow_structured(kept, drop_score, grow_score, count: int, structure):
    """``drop_and_grow`` over whole groups of ``structure`` (``count`` groups; scores pooled by their mean)."""
    if structure.unstructured:
        return drop_and_grow(kept, drop_score, grow_score, count)
    groups = masks.grouped(kept, structure)
    pooled = [masks.grouped(score.float(), structure).mean(1) for score in (drop_score, grow_score)]
    new_groups, _ = drop_and_grow(groups.all(1), *pooled, count)
    new_kept = masks.ungrouped(new_groups.unsqueeze(1).expand_as(groups), tuple(kept.shape), structure)
    return new_kept, new_kept & ~kept


def drop_and_grow(kept, drop_score, grow_score, count: int):
    """Drop the ``count`` kept entries with the lowest ``drop_score``, grow ``count`` with the highest ``grow_score``.

    Grow candidates are all entries not kept after the drop, so an entry just dropped may be
    grown again (as in RigL's code); such an entry counts as unchanged. ``kept`` is bool.
    Returns ``(new_kept, newly_active)``, both bool of the mask's shape.
    """
    active = kept.reshape(-1)
    n_active = int(active.sum())
    count = min(count, n_active)
    survivors = masks.topk(drop_score.reshape(-1).float().masked_fill(~active, -math.inf), n_active - count)
    grown = masks.topk(grow_score.reshape(-1).float().masked_fill(survivors, -math.inf), count)
    new_kept = survivors | grown
    return new_kept.view_as(kept), (new_kept & ~active).view_as(kept)
