"""``static``: a fixed random sparse mask drawn at initialisation (the Static baseline of Evci et al. 2020).

Layer densities are ERK (default) or uniform, with exact per-layer counts summing to the
global target (``_masking.plan_counts``); masked φ is re-zeroed after every step.
"""

from bench_powerprop.methods._masking import DISTRIBUTIONS, MaskedMethod, layer_shapes, plan_counts, random_mask
from bench_powerprop.methods.base import register_method
from bench_powerprop.powerprop import weight_layers
from bench_powerprop.pruning import apply_masks, enforce_masks


@register_method
class Static(MaskedMethod):
    name = "static"
    DEFAULTS = {
        "distribution": "erk",       # Evci et al. 2020 compare Static with the same distributions as RigL
        "erk_power_scale": 1.0,
        "first_layer_dense": False,
    }

    def __init__(self, options, sparsity, total_steps, seed):
        super().__init__(options, sparsity, total_steps, seed)
        self.require_choice("distribution", DISTRIBUTIONS)

    def setup(self, model, optimizer):
        super().setup(model, optimizer)
        shapes = layer_shapes(model)
        dense_layers = [next(iter(shapes))] if self.config["first_layer_dense"] else []
        self.target_counts = plan_counts(shapes, self.density, self.config["distribution"], dense_layers, self.config["erk_power_scale"])
        like = next(iter(weight_layers(model).values())).weight
        apply_masks(model, {name: random_mask(shape, self.target_counts[name], self.generator, like) for name, shape in shapes.items()})
        self.masks_changed()

    def after_step(self, model, optimizer, step):
        self.count_step(model)
        enforce_masks(model)
