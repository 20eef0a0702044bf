"""``grasp``: gradient signal preservation, θ ⊙ (H·g) (Wang, Zhang & Grosse, "Picking winning tickets
before training by preserving gradient flow", ICLR 2020, §4 eq. 8 and Algorithm 1).

Reference code: alecwangcq/GraSP ``pruner/GraSP.py::GraSP`` (commit f17d87a) and its port in
ganguli-lab/Synaptic-Flow ``Pruners/pruners.py::GraSP`` (commit 9dfa57a), which this follows.

The paper scores S(−θ) = −θ ⊙ Hg and *removes* the largest S (Algorithm 1 keeps S < τ). Scores here
are "higher is kept", so this scorer returns −S = θ ⊙ Hg: the weights GraSP keeps are exactly the
ones kept here. g = Σ_b ∂L_b/∂θ and Hg = Σ_b H_b·g by double backpropagation (Hessian-vector
products, never the Hessian), both on logits divided by the temperature T = 200 of the reference
code. θ is the effective weight under any installed mask, so the scorer works under Powerprop.

The network is scored in train mode (``mode``), as the official script, which calls ``GraSP`` on a
model in train mode (``main_prune_non_imagenet.py``; ``pruner/GraSP.py`` deep-copies it with the
``.eval()`` commented out); ``mode: eval`` is Synaptic-Flow's default. It matters only with batch
norm or dropout. ``count: reference`` keeps Synaptic-Flow's count n − int((1 − d)·n).

Deviations: the official code first re-initialises every Linear layer of its copy with Xavier
normal (``reinit=True``) and splits one batch into two halves; like Synaptic-Flow, this scores the
model as it is, over ``inputs.batches``; no normalisation by |Σ S| (it does not change the ranking).
Checked against Synaptic-Flow's ``GraSP`` run unchanged: ``docs/fidelity.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, number, one_of, option
from bench_powerprop.scoring.base import SCORERS, Scorer

saliency = LazyModule("bench_powerprop.scoring._saliency")


@dataclass(frozen=True)
class GraspOptions(Options):
    temperature: float = option(200.0, "T: logits are divided by T before the loss (reference code: 200)",
                                check=number(minimum=0, exclusive_minimum=True))
    mode: str = option("train", "mode of the network while scoring: train (the official script's) or eval (Synaptic-Flow's)",
                       check=one_of("train", "eval"))


@SCORERS.register("grasp", options=GraspOptions)
class Grasp(Scorer):
    needs_data = True

    def score(self, model, inputs=None):
        thetas = saliency.masked_thetas(model, inputs.mask)
        temperature, mode = self.options.temperature, self.options.mode
        batches = list(inputs.batches)
        gradient = saliency.loss_gradients(model, thetas, batches, inputs.loss_fn, temperature, mode=mode)
        hg = saliency.hessian_gradient_product(model, thetas, batches, inputs.loss_fn, gradient, temperature, mode=mode)
        return {name: theta * hg[name] for name, theta in thetas.items()}
