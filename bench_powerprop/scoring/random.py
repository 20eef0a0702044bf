"""``random``: an independent uniform score per weight, i.e. a uniformly random choice of the kept
weights with exact counts (the random-pruning baseline of every pruning-at-initialisation paper).

Drawn from ``inputs.generator`` when given (seeded by the caller), else from torch's global RNG.
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule
from bench_powerprop.scoring.base import SCORERS, Scorer

torch = LazyModule("torch")
powerprop = LazyModule("bench_powerprop.powerprop")


@SCORERS.register("random")
class Random(Scorer):
    def score(self, model, inputs=None):
        generator = inputs.generator if inputs is not None else None
        return {
            name: torch.rand(layer.weight.shape, generator=generator).to(layer.weight.device)
            for name, layer in powerprop.weight_layers(model).items()
        }
