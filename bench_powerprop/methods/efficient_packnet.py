"""``efficient_packnet``: EfficientPackNet (EPN), PackNet with a per-task search for the sparsest sufficient mask.

Source: Algorithm 1 of the student reproduction report (Jain, Raj & Asgaonkar 2022, "Powerpropagation",
a reproduction of Schwarz et al., NeurIPS 2021, §5, continual learning); no reference code exists
(the official Powerprop release, google-deepmind/deepmind-research ``powerpropagation/``, is a
notebook without continual learning). Per task t:

1. train task t with the backward mask: gradient reaches only the weights no earlier task uses
   (the forward pass uses every weight);
2. measure the dense validation accuracy P (the model as trained, no forward mask, task t's biases);
3. search the kept fractions S = ``keep_levels`` for a sparse mask whose validation accuracy P_s
   passes γ·P (``gamma``): P_s > γ·P, the strict comparison of Algorithm 1's loop condition
   (``strict: false`` accepts P_s = γ·P too). The mask at kept fraction s is, as Algorithm 1,
   TopK(φ, ⌊s·dim(φ)⌋): the ⌊s·N⌋ largest |φ| over *all* N weights of the network together (scope
   ``global``, ``count: reference``; ranking |θ| = |φ|^α is the same order). Weights of earlier tasks
   may be reused (they stay frozen). ``scope: layerwise`` with ``last_layer_keep_factor: 2`` and
   ``count: exact`` is this harness's earlier per-layer mask (top-k per layer, the output layer
   keeping min(1, 2s)).
   **Direction of the search (our reading):** ``search: sequential`` (default) tries S from the
   densest level towards the sparsest while the sparse model passes γ·P and keeps the *last level that
   passed*; the first failure ends the search (a denser level than every level of S, i.e. every weight,
   when the densest level of S already fails). We read it so because a loop whose condition is
   P_s > γ·P continues while the sparse model is good enough, which only makes sense moving towards
   sparser masks, and Schwarz et al. (2021), who introduce EPN, describe the search as "terminating the
   search once the sparse model's performance falls short of a minimum accepted target performance
   γP"; we keep the last passing mask, not the failing one that ended the loop, because the failing
   one violates the stated target. (The TopK count and the strict loop condition are the
   pseudo-code's as quoted in this project's issue 17; the report's text is not shipped here.)
   ``search: grid`` instead takes the sparsest level of S that passes, even when a denser level
   fails (the two agree whenever
   accuracy falls monotonically with sparsity); ``search: binary`` bisects the kept fraction
   geometrically between min(S) and 1 for ``binary_steps`` steps, assuming accuracy is monotone in
   s, and returns the sparsest fraction found to pass;
4. the backward mask protects the union of all task masks from then on;
5. every weight no task uses is **re-initialised** (``reinit``: initial θ₀ by default, or a random
   draw; ``keep``: not at all, the control), never zeroed: under Powerprop φ = 0 is a critical point;
6. optionally retrain with the mask (``retrain_steps``, default 0: off), updating only the weights
   task t newly claims.

The options against Algorithm 1 and their tests: ``docs/fidelity.md``.

``scorer: random`` is the random-mask control: the same search over masks drawn at random.
Phases, freezing, per-task biases and evaluation: ``methods/_continual.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._continual import KEEP, ContinualMethod, ContinualOptions
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import OptionError, boolean, integer, list_of, number, one_of, option, step_or_fraction
from bench_powerprop.scoring.base import SCOPES, check_scope

masks = LazyModule("bench_powerprop.masks")

DEFAULT_KEEP_LEVELS = (0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class EfficientPackNetOptions(ContinualOptions):
    gamma: float = option(0.95, "γ: a task's mask must keep validation accuracy > γ·P (P: the dense accuracy)",
                          check=number(minimum=0, maximum=1, exclusive_minimum=True))
    keep_levels: tuple[float, ...] = option(DEFAULT_KEEP_LEVELS, "S: the kept fractions searched, each in (0, 1]",
                                            check=list_of(number(minimum=0, maximum=1, exclusive_minimum=True), min_items=1))
    search: str = option("sequential", "sequential: S from the densest level while the mask passes γ·P, the last passing "
                         "level (Algorithm 1); grid: the sparsest level of S passing; binary: bisect the kept fraction "
                         "between min(S) and 1", check=one_of("sequential", "grid", "binary"))
    strict: bool = option(True, "a mask passes when its accuracy is > γ·P (Algorithm 1); false: >= γ·P", check=boolean())
    binary_steps: int = option(8, "bisection steps of search: binary", check=integer(minimum=1, maximum=64))
    scope: str = option("global", "top-|θ| over every weight together (global, Algorithm 1's TopK over φ), per layer "
                        "(layerwise), or global_separate_output", check=one_of(*SCOPES))
    last_layer_keep_factor: float = option(1.0, "the output layer keeps min(1, factor·s) of its weights (layerwise, "
                                           "global_separate_output)", check=number(minimum=1))
    count: str = option("reference", "weights kept of n: reference ⌊s·n⌋ (Algorithm 1) or exact round(s·n)",
                        check=one_of("reference", "exact"))
    retrain_steps: int | float = option(0, "steps of retraining with the chosen mask (a fraction of train.steps, or a "
                                        "step count; 0: no retraining)", check=step_or_fraction())
    reinit: str | None = option(None, "value given to the weights no task uses: initial (their initial θ₀; default) or "
                                "random (a draw from their layer's initial distribution), never zero; keep: not "
                                "re-initialised (the control of the report's 're-initialising helps')",
                                check=one_of("initial", "random", KEEP, nullable=True))

    def check(self, where, cell):
        check_scope(self.scope, self.last_layer_keep_factor, where)
        if len(set(self.keep_levels)) != len(self.keep_levels):
            raise OptionError(f"{where}.keep_levels: the levels {list(self.keep_levels)} repeat a value")


def passes(accuracy: float, threshold: float, strict: bool) -> bool:
    """Whether a sparse model's accuracy passes the target γ·P: strictly above it (Algorithm 1), or at least it."""
    return accuracy > threshold if strict else accuracy >= threshold


def last_passing(levels, accuracy_of, threshold: float, strict: bool = True) -> tuple[float, list[dict]]:
    """Algorithm 1's search: levels from the densest down while each passes; the last level that passed.

    The first failing level ends the search; when the densest level already fails, every weight (1) is kept.
    Returns the level and every level tried with its accuracy.
    """
    tried, chosen = [], 1.0
    for level in sorted(set(levels), reverse=True):
        accuracy = accuracy_of(level)
        tried.append({"keep": level, "val_accuracy": accuracy})
        if not passes(accuracy, threshold, strict):
            break
        chosen = level
    return chosen, tried


def sparsest_meeting(levels, accuracy_of, threshold: float, strict: bool = True) -> tuple[float, list[dict]]:
    """The smallest level whose ``accuracy_of(level)`` passes ``threshold``, trying levels from the sparsest up.

    Level 1 (every weight) ends the list; it is taken when no sparser level passes.
    Returns the level and every level tried with its accuracy.
    """
    tried = []
    for level in sorted({*levels, 1.0}):
        accuracy = accuracy_of(level)
        tried.append({"keep": level, "val_accuracy": accuracy})
        if passes(accuracy, threshold, strict) or level == 1.0:
            return level, tried
    raise AssertionError("unreachable: level 1 ends the search")


def bisect_keep(lowest: float, accuracy_of, threshold: float, steps: int, strict: bool = True) -> tuple[float, list[dict]]:
    """The sparsest kept fraction in [lowest, 1] found to pass ``threshold`` by geometric bisection (accuracy assumed monotone)."""
    tried = []

    def meets(level: float) -> bool:
        accuracy = accuracy_of(level)
        tried.append({"keep": level, "val_accuracy": accuracy})
        return passes(accuracy, threshold, strict)

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

        rounding = "floor" if options.count == "reference" else "round"

        def mask_at(keep: float):
            return masks.prune(scores, keep, options.scope, options.last_layer_keep_factor, rounding)

        dense = self.accuracy_of(ctx, None)
        threshold = options.gamma * dense

        def accuracy_at(keep: float) -> float:
            return self.accuracy_of(ctx, mask_at(keep))

        if options.search == "sequential":
            keep, tried = last_passing(options.keep_levels, accuracy_at, threshold, options.strict)
        elif options.search == "grid":
            keep, tried = sparsest_meeting(options.keep_levels, accuracy_at, threshold, options.strict)
        else:
            keep, tried = bisect_keep(min(options.keep_levels), accuracy_at, threshold, options.binary_steps, options.strict)
        return mask_at(keep), {"dense_val_accuracy": dense, "threshold": threshold, "keep": keep, "search": tried}
