"""``efficient_packnet``: EfficientPackNet (EPN), PackNet with a per-task search for the sparsest sufficient mask.

Source: Algorithm 1 of the student reproduction report of Powerpropagation (Schwarz et al., NeurIPS
2021, §5, continual learning), as quoted in this project's issue; no reference code exists (the
official Powerprop release, google-deepmind/deepmind-research ``powerpropagation/``, is a notebook
without continual learning). Per task t:

1. train task t with the backward mask: gradient reaches only the weights no earlier task uses
   (the forward pass uses every weight);
2. measure the dense validation accuracy P (the model as trained, no forward mask, task t's biases);
3. search the kept fractions S = ``keep_levels`` for the sparsest mask whose validation accuracy is
   ≥ γ·P (``gamma``). A mask keeps the top-|θ| fraction s of *every* weight, so weights of earlier
   tasks may be reused (they stay frozen); ``scope``/``last_layer_keep_factor`` as in one-shot
   pruning (``masks.prune``; default layerwise, the output layer keeping min(1, 2s)).
   **Direction of the search (our reading of the ambiguous pseudo-code):** S is tried from the
   sparsest level upwards and the first level meeting γ·P is taken, i.e. the sparsest level in S
   that meets it, even when accuracy is not monotone in s (a denser level failing does not stop
   the search). s = 1 (every weight) always meets it and ends the search. ``search: binary``
   instead bisects the kept fraction geometrically between min(S) and 1 for ``binary_steps``
   steps, assuming accuracy is monotone in s, and returns the sparsest fraction found to meet γ·P;
4. the backward mask protects the union of all task masks from then on;
5. every weight no task uses is **re-initialised** (``reinit``: initial θ₀ by default, or a random
   draw), never zeroed: under Powerprop φ = 0 is a critical point and would never train again;
6. optionally retrain with the mask (``retrain_steps``, default 0: off), updating only the weights
   task t newly claims.

``scorer: random`` is the random-mask control: the same search over masks drawn at random.
Phases, freezing, per-task biases and evaluation: ``methods/_continual.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._continual import ContinualMethod, ContinualOptions
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import OptionError, integer, list_of, number, one_of, option, step_or_fraction

masks = LazyModule("bench_powerprop.masks")

DEFAULT_KEEP_LEVELS = (0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class EfficientPackNetOptions(ContinualOptions):
    gamma: float = option(0.95, "γ: a task's mask must keep validation accuracy >= γ·P (P: the dense accuracy)",
                          check=number(minimum=0, maximum=1, exclusive_minimum=True))
    keep_levels: tuple[float, ...] = option(DEFAULT_KEEP_LEVELS, "S: the kept fractions searched, each in (0, 1]",
                                            check=list_of(number(minimum=0, maximum=1, exclusive_minimum=True), min_items=1))
    search: str = option("grid", "grid: the sparsest level of S meeting γ·P; binary: bisect the kept fraction between "
                         "min(S) and 1", check=one_of("grid", "binary"))
    binary_steps: int = option(8, "bisection steps of search: binary", check=integer(minimum=1, maximum=64))
    scope: str = option("layerwise", "top-|θ| per layer (layerwise) or over all hidden layers together (global)",
                        check=one_of("layerwise", "global"))
    last_layer_keep_factor: float = option(2.0, "the output layer keeps min(1, factor·s) of its weights", check=number(minimum=1))
    retrain_steps: int | float = option(0, "steps of retraining with the chosen mask (a fraction of train.steps, or a "
                                        "step count; 0: no retraining)", check=step_or_fraction())
    reinit: str | None = option(None, "value given to the weights no task uses: initial (their initial θ₀; default) or "
                                "random (a draw from their layer's initial distribution); never zero",
                                check=one_of("initial", "random", nullable=True))

    def check(self, where, cell):
        if len(set(self.keep_levels)) != len(self.keep_levels):
            raise OptionError(f"{where}.keep_levels: the levels {list(self.keep_levels)} repeat a value")


def sparsest_meeting(levels, accuracy_of, threshold: float) -> tuple[float, list[dict]]:
    """The smallest level whose ``accuracy_of(level)`` is >= ``threshold``, trying levels from the sparsest up.

    Level 1 (every weight) ends the list; it is taken when no sparser level meets the threshold.
    Returns the level and every level tried with its accuracy.
    """
    tried = []
    for level in sorted({*levels, 1.0}):
        accuracy = accuracy_of(level)
        tried.append({"keep": level, "val_accuracy": accuracy})
        if accuracy >= threshold or level == 1.0:
            return level, tried
    raise AssertionError("unreachable: level 1 ends the search")


def bisect_keep(lowest: float, accuracy_of, threshold: float, steps: int) -> tuple[float, list[dict]]:
    """The sparsest kept fraction in [lowest, 1] found to meet ``threshold`` by geometric bisection (accuracy assumed monotone)."""
    tried = []

    def meets(level: float) -> bool:
        accuracy = accuracy_of(level)
        tried.append({"keep": level, "val_accuracy": accuracy})
        return accuracy >= threshold

    if meets(lowest):
        return lowest, tried
    low, high = lowest, 1.0
    for _ in range(steps):
        middle = math.sqrt(low * high)
        if meets(middle):
            high = middle
        else:
            low = middle
    return high, tried


@METHODS.register("efficient_packnet", options=EfficientPackNetOptions)
class EfficientPackNet(ContinualMethod):
    default_reinit_mode = "initial"

    @no_grad
    def choose_mask(self, ctx):
        options = self.options
        scores = self.scores(ctx)

        def mask_at(keep: float):
            return masks.prune(scores, keep, options.scope, options.last_layer_keep_factor)

        dense = self.accuracy_of(ctx, None)
        threshold = options.gamma * dense

        def accuracy_at(keep: float) -> float:
            return self.accuracy_of(ctx, mask_at(keep))

        if options.search == "grid":
            keep, tried = sparsest_meeting(options.keep_levels, accuracy_at, threshold)
        else:
            keep, tried = bisect_keep(min(options.keep_levels), accuracy_at, threshold, options.binary_steps)
        return mask_at(keep), {"dense_val_accuracy": dense, "threshold": threshold, "keep": keep, "search": tried}
