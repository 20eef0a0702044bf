"""``rigl``: Rigging the Lottery (Evci et al., ICML 2020, §3 and §4.1).

Reference code: google-research/rigl ``rigl/sparse_optimizers_base.py``
(``SparseRigLOptimizerBase``) and ``rigl/sparse_utils.py`` (layer distributions), commit d39fc7d.

Random sparse initial mask with ERK (default) or uniform layer densities; every ΔT = 100 steps
from step 0 until 75% of training (inclusive), each layer drops the fraction
d_t = 0.3·(1 + cos(πt/T_end))/2 of its active weights with the smallest |θ| and grows as many
inactive weights with the largest |∂L/∂θ| of the dense gradient of that step. Timing as
google-research/rigl ``rigl_tf2/train.py`` (Evci et al. 2022's code): every iteration takes its
optimizer step, then updates the mask when the step count *after* it, t + 1, is a multiple of ΔT, with
the drop fraction at t + 1 (``update_mode: after_step``): ΔT optimizer steps between updates, the
run's step budget all optimizer steps. ``replace_step`` is the TF1 code's
(``rigl/sparse_optimizers.py``: ``cond(mask_update, mask_update_op, apply_gradient_op)``): the update
iteration takes no optimizer step and counts as one of the run's steps. Grown weights get fresh
optimizer state.

Deviations: the grow gradient is that of the step's own training batch at the weights before its optimizer
step (as the TF1 code's update iteration); rigl_tf2 takes it on a fixed held-out batch after the step.
Grown weights' value is ``grow_init``: the paper grows at zero, which under
Powerprop (α > 1) is a critical point — ∂L/∂φ = α|φ|^(α−1)·∂L/∂θ = 0 — so the default there is
the weight's initial value (``initial``). Ties in the drop score are broken by ``torch.topk``
instead of the reference's 1e-5 noise. The reference's ``initial_acc_scale`` (momentum of grown
weights) is fixed at its default 0.
"""

from dataclasses import dataclass

from bench_powerprop.methods._drop_and_grow import DynamicSparseMethod, DynamicSparseOptions
from bench_powerprop.methods.base import METHODS


@dataclass(frozen=True)
class RigLOptions(DynamicSparseOptions):
    pass


@METHODS.register("rigl", options=RigLOptions)
class RigL(DynamicSparseMethod):
    uses_dense_grad = True

    def grow_scores(self, ctx, name, layer):
        gradients = ctx.dense_gradients()
        if name not in gradients:
            raise RuntimeError(f"rigl: no dense gradient was captured for {name!r} on a mask-update step")
        return gradients[name].abs()
