"""``force``: foresight connection sensitivity, iterative (de Jorge, Sanyal, Behl, Torr, Rogez & Dokania,
"Progressive skeletonization: trimming more fat from a network at initialization", ICLR 2021, §3-4).

Reference code: naver/force ``pruning/pruning_algos.py`` (``iterative_pruning`` with
``prune_method=3``, ``get_average_saliencies``), commit 7494eed: over ``rounds`` rounds (default 10)
with the exponential schedule keep^(r/R), the saliency is |θ₀ ⊙ ∂L/∂θ| where the gradient is taken
*at the pruned weights* θ₀ ⊙ m (the network of the previous round) and θ₀ are the dense initial
weights, so a weight pruned in one round can come back in the next. The gradient is averaged over
``inputs.batches``. θ is the effective weight, so the scorer works under Powerprop.

Like the reference, the network is scored in train mode (``mode``; its script builds the network and
prunes it before any ``eval()``), which matters only with batch norm or dropout; ``mode: eval`` is
the option. The ``pai`` method's default scope ``global`` ranks every layer together, as the
reference's ``get_mask``. Each round keeps exactly round(d·N) weights by default (``count: exact``);
``count: reference`` applies the reference's rule (``masks.choose`` rule ``force``): every weight
scoring >= the int(d·N)-th largest score. The two differ by more than rounding when many scores tie
at the threshold: weights whose gradient is exactly zero (inputs that are always zero, units dead
on the whole batch) all score 0, and when they are more than 1 − d of the network the reference
keeps every one of them in that round.

Deviations: the reference draws a fresh batch every round; here every round uses the same
``inputs.batches`` (the ``pai`` method's scoring batches), so the rounds differ only by the mask;
the kept fraction of round r is keep^(r/R), where the reference evaluates exp(−r·(−log keep)/R)
(the same number up to rounding). Checked against the reference code run unchanged:
``docs/fidelity.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import integer, one_of, option
from bench_powerprop.scoring.base import SCORERS, Scorer
from bench_powerprop.scoring.synflow import IterativeOptions

masks = LazyModule("bench_powerprop.masks")
saliency = LazyModule("bench_powerprop.scoring._saliency")


@dataclass(frozen=True)
class ForceOptions(IterativeOptions):
    rounds: int = option(10, "pruning rounds (reference default num_steps: 10)", check=integer(minimum=1))
    mode: str = option("train", "mode of the network while scoring: train (the reference script's) or eval",
                       check=one_of("train", "eval"))


@SCORERS.register("force", options=ForceOptions)
class Force(Scorer):
    needs_data = True
    reference_rounding = "force"

    def score(self, model, inputs=None):
        """One round: |θ₀ ⊙ ∂L/∂θ| with the gradient at θ₀ ⊙ ``inputs.mask`` (θ₀ when no mask is given)."""
        dense = saliency.masked_thetas(model)
        return self._saliency(model, inputs, dense, inputs.mask)

    def select(self, model, inputs, keep, scope="layerwise", last_layer_keep_factor=1.0, count="exact"):
        dense = saliency.masked_thetas(model)
        kept = inputs.mask
        for round_index in range(1, self.options.rounds + 1):
            density = saliency.schedule_density(keep, round_index, self.options.rounds, self.options.schedule)
            kept = masks.prune(self._saliency(model, inputs, dense, kept), density, scope, last_layer_keep_factor,
                               self.rounding(count))
        return kept

    def _saliency(self, model, inputs, dense, kept):
        pruned = dense if kept is None else {name: theta * kept[name] for name, theta in dense.items()}
        grads = saliency.loss_gradients(model, pruned, inputs.batches, inputs.loss_fn, reduce="mean", mode=self.options.mode)
        return {name: (grads[name] * theta).abs() for name, theta in dense.items()}
