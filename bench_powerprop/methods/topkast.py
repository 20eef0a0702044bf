"""``topkast``: Top-K Always Sparse Training (Jayakumar et al., NeurIPS 2020).

Per layer, the forward set A is the top-D weights by |θ| (D = 1 − sparsity) and the
backward set B ⊇ A the top-(D + M): A is the forward mask (``weight_mask``) and B the
backward mask (``weight_grad_mask``), so gradients reach B only. φ stays dense — only the
forward is sparse — so weights outside A keep their values and can re-enter A; weights
outside B are frozen: their φ is restored after the optimizer step (undoing weight decay and
momentum) and their optimizer state is kept at zero, so a weight entering B starts fresh.
Reported weights (``effective_weight_of``) are masked by A.

Exploration penalty (Jayakumar et al. §2.2, returned by ``loss_penalty``):
``penalty/2 · Σ_l [ Σ_{A_l} w² + Σ_{B_l∖A_l} w² / D_l ]``, w = φ by default (the stored,
optimised parameter — the same variable the trainer's weight decay acts on; identical to θ
for α = 1) or θ with ``penalty_on: theta``.

Defaults: masks recomputed every step (``update_every: 1``), as in the paper, which reports
(second-hand, not checked here) no loss from recomputing only every 100 steps. Backward
density 2·D (M = D, e.g. forward 90% / backward 80% sparsity, one of the paper's ImageNet
configurations), capped at 1; set ``backward_sparsity`` to pick another. ``penalty`` 1e-4:
the usual ResNet-50 weight-decay strength, whose role the exploration penalty takes (our
choice; the coefficient is not taken from the paper). Layer counts are uniform (exact, via
``_masking.plan_counts``).
"""

import torch

from bench_powerprop.methods._masking import MaskedMethod, layer_shapes, plan_counts, reset_optimizer_state
from bench_powerprop.methods.base import register_method
from bench_powerprop.powerprop import PowerpropMixin, convert_layer, theta_from_phi, weight_layers
from bench_powerprop.pruning import topk_mask

PENALTY_TARGETS = ("phi", "theta")


@register_method
class TopKAST(MaskedMethod):
    name = "topkast"
    dense_phi = True
    DEFAULTS = {
        "backward_sparsity": None,
        "penalty": 1e-4,
        "penalty_on": "phi",
        "update_every": 1,
    }

    def __init__(self, options, sparsity, total_steps, seed):
        super().__init__(options, sparsity, total_steps, seed)
        cfg = self.config
        self.require_choice("penalty_on", PENALTY_TARGETS)
        self.require_positive_int("update_every")
        if cfg["backward_sparsity"] is None:
            self.backward_density = round(min(1.0, 2 * self.density), 12)
        else:
            self.backward_density = round(1.0 - float(cfg["backward_sparsity"]), 12)
        if not self.density <= self.backward_density <= 1:
            raise ValueError(f"topkast: backward_sparsity must be in [0, sparsity = {self.sparsity:g}]")
        self.backward_counts: dict[str, int] = {}
        self._before_step: dict[str, torch.Tensor] | None = None

    def setup(self, model, optimizer):
        super().setup(model, optimizer)
        for layer in weight_layers(model).values():
            if not isinstance(layer, PowerpropMixin):
                convert_layer(layer, 1.0)
        self.target_counts = plan_counts(layer_shapes(model), self.density, "uniform")
        self.backward_counts = {
            name: max(self.target_counts[name], min(n, round(self.backward_density * n))) for name, n in self.numels.items()
        }
        self.update_masks(model)

    @torch.no_grad()
    def update_masks(self, model):
        for name, layer in weight_layers(model).items():
            magnitude = theta_from_phi(layer.weight, layer.alpha).abs()
            backward = topk_mask(magnitude, self.backward_counts[name])
            forward = topk_mask(magnitude.masked_fill(backward == 0, -1.0), self.target_counts[name])
            layer.weight_mask, layer.weight_grad_mask = forward, backward
        self.masks_changed()

    def before_forward(self, model, step):
        if step % self.config["update_every"] == 0:
            self.update_masks(model)

    def loss_penalty(self, model):
        coefficient = self.config["penalty"]
        if not coefficient:
            return None
        total = 0.0
        for name, layer in weight_layers(model).items():
            forward, backward = layer.weight_mask, layer.weight_grad_mask
            density = self.target_counts[name] / self.numels[name]
            exponent = 2.0 if self.config["penalty_on"] == "phi" else 2.0 * layer.alpha
            weights = forward + (backward - forward) / density
            total = total + (weights * layer.weight.abs().pow(exponent)).sum()
        return 0.5 * coefficient * total

    def after_backward(self, model, optimizer, step):
        self._before_step = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}

    @torch.no_grad()
    def after_step(self, model, optimizer, step):
        self.count_step(model)
        if self._before_step is None:
            return
        for name, layer in weight_layers(model).items():
            outside = layer.weight_grad_mask == 0
            layer.weight.copy_(torch.where(outside, self._before_step[name], layer.weight))
            reset_optimizer_state(optimizer, layer.weight, outside)
        self._before_step = None

    def resolved_options(self):
        return {**self.config, "backward_sparsity": round(1.0 - self.backward_density, 12)}

    def report(self, model):
        return {**super().report(model), "backward_density": self.backward_density}
