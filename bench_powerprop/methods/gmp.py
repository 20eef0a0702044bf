"""``gmp``: gradual magnitude pruning (Zhu & Gupta, "To prune, or not to prune", 2017).

Sparsity follows the cubic schedule (Zhu & Gupta eq. 1)

    s_t = s_f + (s_i − s_f)·(1 − (t − t₀)/(t_end − t₀))³,   t₀ ≤ t ≤ t_end,

and the masks are recomputed every Δt = ``frequency`` steps from t₀ on, plus at t_end itself,
keeping the largest |θ| (effective weights) with the exact counts of
``pruning.magnitude_masks``. Pruned weights stay pruned (their θ is 0 and counts only
shrink). With t_end − t₀ = n·Δt this is exactly the paper's schedule; otherwise the last
pruning step is t_end, so the final sparsity s_f is always reached. Masks are applied in
``before_forward`` of a pruning step, so that step already trains the pruned network.

Defaults: s_i = 0 and Δt = 100 (Zhu & Gupta §3 report Δt between 100 and 1000 steps makes
no difference to final quality); t₀ = 25% and t_end = 75% of training are this harness's
choice (the paper leaves them to the user; the last quarter lets the network recover);
layerwise scope with every layer, the output layer included, at the target sparsity
(``last_layer_keep_factor`` 1 — Zhu & Gupta prune all layers alike). ``begin_step``/``end_step``
accept fractions of training (floats in [0, 1]) or absolute steps (ints).
"""

from bench_powerprop.methods._masking import MaskedMethod, resolve_step
from bench_powerprop.methods.base import register_method
from bench_powerprop.powerprop import weight_layers
from bench_powerprop.pruning import apply_masks, enforce_masks, kept_count, layer_keep_fractions, magnitude_masks, masked_layers

SCOPES = ("layerwise", "global")


@register_method
class GMP(MaskedMethod):
    name = "gmp"
    DEFAULTS = {
        "begin_step": 0.25,
        "end_step": 0.75,
        "frequency": 100,
        "initial_sparsity": 0.0,
        "scope": "layerwise",
        "last_layer_keep_factor": 1.0,
    }

    def __init__(self, options, sparsity, total_steps, seed):
        super().__init__(options, sparsity, total_steps, seed)
        cfg = self.config
        self.require_choice("scope", SCOPES)
        self.require_positive_int("frequency")
        if not 0 <= cfg["initial_sparsity"] <= self.sparsity:
            raise ValueError(f"gmp: initial_sparsity must be in [0, sparsity], got {cfg['initial_sparsity']}")
        self.begin = resolve_step(cfg["begin_step"], self.total_steps, "begin_step")
        self.end = min(resolve_step(cfg["end_step"], self.total_steps, "end_step"), max(0, self.total_steps - 1))
        if self.end < self.begin:
            raise ValueError(f"gmp: end_step ({self.end}) is before begin_step ({self.begin})")

    def is_pruning_step(self, step: int) -> bool:
        return step == self.end or (self.begin <= step < self.end and (step - self.begin) % self.config["frequency"] == 0)

    def pruning_steps(self) -> list[int]:
        return [step for step in range(self.begin, self.end + 1) if self.is_pruning_step(step)]

    def sparsity_at(self, step: int) -> float:
        """The scheduled sparsity at a pruning step (s_i before t₀, s_f from t_end on)."""
        initial, final = self.config["initial_sparsity"], self.sparsity
        if step < self.begin:
            return initial
        if step >= self.end:
            return final
        return final + (initial - final) * (1 - (step - self.begin) / (self.end - self.begin)) ** 3

    def setup(self, model, optimizer):
        super().setup(model, optimizer)
        if self.config["scope"] == "layerwise":
            names = list(weight_layers(model))
            fractions = layer_keep_fractions(names, self.density, self.config["last_layer_keep_factor"])
            self.target_counts = {name: kept_count(self.numels[name], fractions[name]) for name in names}

    def before_forward(self, model, step):
        if not self.is_pruning_step(step):
            return
        sparsity = self.sparsity_at(step)
        if sparsity == 0 and not masked_layers(model):
            return
        masks = magnitude_masks(model, 1.0 - sparsity, self.config["scope"], self.config["last_layer_keep_factor"])
        apply_masks(model, masks)
        self.masks_changed()

    def after_step(self, model, optimizer, step):
        self.count_step(model)
        enforce_masks(model)

    def resolved_options(self):
        return {**self.config, "begin_step": self.begin, "end_step": self.end}
