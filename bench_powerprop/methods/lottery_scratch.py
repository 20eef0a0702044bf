"""``lottery_scratch``: the random-mask control of a lottery ticket (open_lth ``randomly_prune`` with the
``layerwise`` strategy; not Evci et al. 2022's "scratch", which keeps the ticket's mask: ``lottery_reinit``): a
uniformly random mask with exactly the per-layer counts of the ticket of the same level (``mask_from``), on fresh
random weights, any ``init``.

See ``bench_powerprop/methods/_controls.py`` for the fresh draw and the references. Deviation from open_lth:
its ``randomly_prune`` starts from the ticket's rewound weights by default (``start_at='rewind'``); here
the weights are fresh, so the control differs from ``lottery_reinit`` only by its mask.
"""

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._controls import ControlOptions, FreshWeightsControl
from bench_powerprop.methods._init import init_suffix
from bench_powerprop.methods.base import METHODS

masks = LazyModule("bench_powerprop.masks")


@METHODS.register("lottery_scratch", options=ControlOptions)
class LotteryScratch(FreshWeightsControl):
    @classmethod
    def report_label(cls, options):
        return "random mask (scratch)" + init_suffix(options)

    def initial_mask(self, ctx):
        return masks.random_mask(masks.layer_shapes(ctx.model), self.target_counts, self.generator, self.structure)
