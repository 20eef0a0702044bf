"""``rigl``: Rigging the Lottery (Evci et al., ICML 2020).

Random sparse initial mask with ERK (default) or uniform layer densities; every ΔT = 100
steps, until 75% of training, each layer drops the fraction d_t = 0.3·(1 + cos(πt/T_end))/2
of its active weights with the smallest |θ| and grows as many inactive weights with the
largest |∂L/∂θ| of the dense gradient of that step (``capture_dense_grad``). Defaults are
the paper's (§3, §4.1); see ``DynamicSparseMethod`` for the mechanics.

Grown weights get fresh optimizer state. Their value is ``grow_init``: the paper grows at
zero, which under Powerprop (α > 1) is a critical point — ∂L/∂φ = α|φ|^(α−1)·∂L/∂θ = 0 —
so the default there is the weight's initial value (``initial``); see ``_masking``.
"""

import torch

from bench_powerprop.methods._masking import DynamicSparseMethod
from bench_powerprop.methods.base import register_method


@register_method
class RigL(DynamicSparseMethod):
    name = "rigl"
    uses_dense_grad = True

    def grow_scores(self, name, layer) -> torch.Tensor:
        dense_grad = getattr(layer, "dense_grad", None)
        if dense_grad is None:
            raise RuntimeError(f"rigl: no dense gradient was captured for {name!r} on a mask-update step")
        return dense_grad.abs()
