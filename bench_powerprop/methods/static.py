"""``static``: a fixed random sparse mask drawn at initialisation (the Static baseline of Evci et al. 2020, §4.1).

Reference code: google-research/rigl ``rigl/sparse_utils.py`` (``get_mask_random`` with the
``erdos_renyi_kernel`` / ``random`` distributions), commit d39fc7d.

Layer densities are ERK (default) or uniform, with RigL's dense layers (``dense_layers``, default: RigL's README —
the first layer under uniform, and under ERK at 99% sparsity) counted in the budget, and exact per-layer counts
(``bench_powerprop.budgets``); masked
φ is re-zeroed after every step. With ``mask_from`` in the config (lineage) the inherited mask is
used instead of a random one. Once the mask is fixed, the ``init`` option may re-initialise the kept
weights (``dense``: as built; ``sparse_aware``: Evci et al. 2022's per-unit scaling by the active
fan-in; ``layer_scaled``: ÷ √density). No deviations beyond exact counts (the reference draws each
layer's mask by shuffling a vector with round(density·n) ones, which is the same distribution).
"""

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._init import SparseInitOptions, check_init_not_inherited, init_suffix, initialise_kept
from bench_powerprop.methods._layer_budget import LayerDistributionOptions, plan_layer_counts, rigl_dense_layers
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods.base import METHODS

masks = LazyModule("bench_powerprop.masks")


@dataclass(frozen=True)
class StaticOptions(LayerDistributionOptions, SparseInitOptions):
    pass


@METHODS.register("static", options=StaticOptions)
class Static(MaskedMethod):
    accepts_mask_from = True
    #: RigL's static baseline (Evci et al. 2020): RigL's layer policy
    paper_dense_layers = classmethod(lambda cls, options, sparsity: rigl_dense_layers(options, sparsity))
    structures = ("unstructured", "n_of_m", "channel", "block")

    @classmethod
    def report_label(cls, options):
        return None if options["init"] == "dense" else cls.registry_name + init_suffix(options)

    @classmethod
    def check_lineage(cls, options, inherits, cell):
        check_init_not_inherited(options, inherits)

    def setup(self, ctx):
        super().setup(ctx)
        inherited = ctx.lineage.mask
        if inherited:
            self.target_counts = inherited.layer_counts()
            return
        counts = plan_layer_counts(ctx.model, self.density, self.options, self.dense_layers)
        self.target_counts = masks.structured_counts(masks.layer_shapes(ctx.model), counts, self.structure)

    def prepare(self, ctx):
        self.install(ctx, self.initial_mask(ctx))
        initialise_kept(ctx, self.options, self.generator)

    def initial_mask(self, ctx):
        """The inherited mask (``mask_from``), else a random one with the planned per-layer counts."""
        if ctx.lineage.mask:
            return masks.Mask(ctx.lineage.mask, self.structure)
        return masks.random_mask(masks.layer_shapes(ctx.model), self.target_counts, self.generator, self.structure)

    def after_step(self, ctx):
        self.count_step(ctx)
