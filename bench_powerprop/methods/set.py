"""``set``: Sparse Evolutionary Training (Mocanu et al., Nature Communications 2018).

Like RigL but grows at random: each update drops the fraction d_t of active weights with
the smallest |θ| and activates as many uniformly random inactive ones (drawn from the
method's own seeded generator, whose state is checkpointed). Schedule and layer
distribution follow RigL's SET baseline (Evci et al. 2020 §4.1: ΔT = 100, drop fraction 0.3
with cosine decay, updates until 75% of training, ERK); SET itself used ζ = 0.3 per epoch
with an Erdős–Rényi distribution, selectable here via options. Grown-weight value:
``grow_init`` (zeros for α = 1 as published, the initial value for α > 1).
"""

import torch

from bench_powerprop.methods._masking import DynamicSparseMethod
from bench_powerprop.methods.base import register_method


@register_method
class SET(DynamicSparseMethod):
    name = "set"
    uses_dense_grad = False

    def grow_scores(self, name, layer) -> torch.Tensor:
        scores = torch.rand(layer.weight.shape, generator=self.generator)
        return scores.to(layer.weight.device)
