"""``snip``: connection sensitivity |∂L/∂θ ⊙ θ| (Lee, Ajanthan & Torr, "SNIP: Single-shot network pruning
based on connection sensitivity", ICLR 2019, §4.1 eq. 6).

Reference code: namhoonlee/snip-public ``snip/model.py`` (``get_sparse_mask``: |∂L/∂c| at mask c = 1,
which is |g ⊙ w|), commit f028496; and its PyTorch port in ganguli-lab/Synaptic-Flow
``Pruners/pruners.py::SNIP`` (commit 9dfa57a), which accumulates the gradient over the scoring batches.

θ is the effective weight (Powerprop's θ = φ|φ|^(α−1)) under any installed mask, and the gradient is
taken with respect to θ, so the score is the same function of the network for every α. The
gradient is summed over ``inputs.batches`` (Synaptic-Flow; SNIP itself uses one batch, the default
of the ``pai`` method). Deviations: no normalisation by the sum of scores (it does not change the
ranking); the model is scored in eval mode (Synaptic-Flow's default), which matters only with batch norm.
Masks identical to Synaptic-Flow's ``SNIP`` run unchanged on the same network and batch: ``docs/fidelity.md``.
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule
from bench_powerprop.scoring.base import SCORERS, Scorer

saliency = LazyModule("bench_powerprop.scoring._saliency")


@SCORERS.register("snip")
class Snip(Scorer):
    needs_data = True

    def score(self, model, inputs=None):
        thetas = saliency.masked_thetas(model, inputs.mask)
        grads = saliency.loss_gradients(model, thetas, inputs.batches, inputs.loss_fn)
        return {name: (grads[name] * theta).abs() for name, theta in thetas.items()}
