"""``synflow``: iterative synaptic flow, |∂R/∂θ ⊙ θ| with R = 1ᵀ(∏_l |W_l|)1 (Tanaka, Kunin, Yamins &
Ganguli, "Pruning neural networks without any data by iteratively conserving synaptic flow",
NeurIPS 2020, §6 and Algorithm 1).

Reference code: ganguli-lab/Synaptic-Flow ``Pruners/pruners.py::SynFlow`` and ``prune.py::prune_loop``
(commit 9dfa57a): every parameter replaced by its absolute value, an all-ones input, R the sum of
the outputs, in eval mode; 100 rounds (the paper's experiments) with the exponential schedule
keep^(r/100); at each round the weights already pruned score nothing and stay pruned.

Data-free: ``inputs`` is only read for the input shape (a scoring batch), else an MLP's fan-in.
Works under Powerprop: the network is evaluated at |θ| of the effective weights.
Each round keeps exact counts by ``masks.prune`` in the configured scope (the ``pai`` method's
default ``global`` ranks every layer together, as the reference without ``--dense-classifier``);
``count: reference`` applies the reference's rule per round (n − int((1 − d)·n) kept, every weight
tying the threshold pruned), else exactly round(d·n).

Deviations: R is computed on a float64 copy (the reference's ``model.double()`` is commented out;
float64 keeps R finite on deep networks; on the digits MLP the masks are the reference's all the
same: ``docs/fidelity.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, integer, one_of, option
from bench_powerprop.scoring.base import SCORERS, Scorer

masks = LazyModule("bench_powerprop.masks")
saliency = LazyModule("bench_powerprop.scoring._saliency")


@dataclass(frozen=True)
class IterativeOptions(Options):
    rounds: int = option(100, "pruning rounds (SynFlow's experiments: 100)", check=integer(minimum=1))
    schedule: str = option("exponential", "kept fraction after round r of R: exponential keep^(r/R) (default) or linear",
                           check=one_of("exponential", "linear"))


@SCORERS.register("synflow", options=IterativeOptions)
class Synflow(Scorer):
    def score(self, model, inputs=None):
        """One round: the synaptic-flow saliency of the network as it is (under any installed mask)."""
        thetas = saliency.masked_thetas(model, inputs.mask if inputs is not None else None)
        _, grads = saliency.synflow_flow(model, thetas, saliency.input_shape(model, inputs))
        return {name: (grads[name] * theta.double().abs()).to(theta.dtype) for name, theta in thetas.items()}

    def select(self, model, inputs, keep, scope="layerwise", last_layer_keep_factor=1.0, count="exact"):
        shape = saliency.input_shape(model, inputs)
        given = inputs.mask if inputs is not None else None
        thetas = saliency.masked_thetas(model, given)
        kept = given if given is not None else masks.Mask.full(model)
        for round_index in range(1, self.options.rounds + 1):
            current = {name: theta * kept[name] for name, theta in thetas.items()}
            _, grads = saliency.synflow_flow(model, current, shape)
            scores = {name: (grads[name] * theta.double().abs()).masked_fill(~kept[name], -1.0) for name, theta in current.items()}
            density = saliency.schedule_density(keep, round_index, self.options.rounds, self.options.schedule)
            kept = masks.prune(scores, density, scope, last_layer_keep_factor, self.rounding(count))
        return kept
