"""``magnitude``: |θ|, the magnitude of the effective weight (Han et al. 2015; Zhu & Gupta 2017).

θ = φ|φ|^(α−1) is computed from the stored φ *without* the forward mask: for methods that zero
masked φ (all but Top-KAST) a masked weight scores 0 either way, and Top-KAST, which keeps φ
dense, ranks every weight by its value so a weight outside A can re-enter it. Under Powerprop,
ranking by |θ| equals ranking by |φ| within a layer but not across layers of different scale; the
harness always ranks θ, the weight the network computes with (as the Powerprop notebook prunes
the effective weights).
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.scoring.base import SCORERS, Scorer

powerprop = LazyModule("bench_powerprop.powerprop")


@SCORERS.register("magnitude")
class Magnitude(Scorer):
    @no_grad
    def score(self, model, inputs=None):
        return {name: theta.abs() for name, theta in powerprop.unmasked_effective_weights(model).items()}
