"""``set``: Sparse Evolutionary Training (Mocanu et al., Nature Communications 2018).

Reference code: google-research/rigl ``rigl/sparse_optimizers_base.py``
(``SparseSETOptimizerBase``), the SET baseline of Evci et al. 2020 §4.1, commit d39fc7d.

Like RigL but grows at random: each update drops the fraction d_t of active weights with the
smallest |θ| and activates as many uniformly random inactive ones (drawn from the method's own
seeded generator, whose state is checkpointed). Schedule and layer distribution follow RigL's SET
baseline (ΔT = 100, drop fraction 0.3 with cosine decay, updates until 75% of training, ERK). The
reference's SET takes the optimizer step *and then* updates the mask in the same iteration, testing the
update condition and computing the drop fraction at the step count after that step, t + 1
(``SparseSETOptimizerBase.apply_gradients``; rigl_tf2/train.py): ``update_mode: after_step``, the
default of every drop-and-grow method (``methods._drop_and_grow``).

Deviations: SET itself (Mocanu et al.) used ζ = 0.3 per epoch with an Erdős–Rényi distribution;
set ``update_every`` and ``distribution`` for that. Grown-weight value: ``grow_init`` (zeros for
α = 1 as published, the initial value for α > 1, see ``rigl``). Random grow scores come from a
seeded torch generator, not the reference's stateless TF ops.
"""

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._drop_and_grow import DynamicSparseMethod, DynamicSparseOptions
from bench_powerprop.methods.base import METHODS

torch = LazyModule("torch")


@dataclass(frozen=True)
class SETOptions(DynamicSparseOptions):
    pass


@METHODS.register("set", options=SETOptions)
class SET(DynamicSparseMethod):
    def grow_scores(self, ctx, name, layer):
        return torch.rand(layer.weight.shape, generator=self.generator).to(layer.weight.device)
