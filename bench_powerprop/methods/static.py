"""``static``: a fixed random sparse mask drawn at initialisation (the Static baseline of Evci et al. 2020, §4.1).

Reference code: google-research/rigl ``rigl/sparse_utils.py`` (``get_mask_random`` with the
``erdos_renyi_kernel`` / ``random`` distributions), commit d39fc7d.

Layer densities are ERK (default) or uniform (first layer dense, as RigL's uniform), with exact
per-layer counts meeting the target on the budgeted layers (``bench_powerprop.budgets``); masked
φ is re-zeroed after every step. With ``mask_from`` in the config (lineage) the inherited mask is
used instead of a random one. No deviations beyond exact counts (the reference draws each layer's
mask by shuffling a vector with round(density·n) ones, which is the same distribution).
"""

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._sparse import LayerDistributionOptions, MaskedMethod, plan_layer_counts
from bench_powerprop.methods.base import METHODS

masks = LazyModule("bench_powerprop.masks")


@dataclass(frozen=True)
class StaticOptions(LayerDistributionOptions):
    pass


@METHODS.register("static", options=StaticOptions)
class Static(MaskedMethod):
    accepts_mask_from = True

    def setup(self, ctx):
        super().setup(ctx)
        inherited = ctx.lineage.mask
        self.target_counts = inherited.layer_counts() if inherited else plan_layer_counts(ctx.model, self.density, self.options)

    def prepare(self, ctx):
        inherited = ctx.lineage.mask
        mask = inherited or masks.random_mask(masks.layer_shapes(ctx.model), self.target_counts, self.generator)
        self.install(ctx, mask)

    def after_step(self, ctx):
        self.count_step(ctx)
