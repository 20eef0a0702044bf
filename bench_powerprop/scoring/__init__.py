"""Scorers: one number per prunable weight; the highest-scoring weights are kept.

Every selection of weights in the harness goes through a scorer and ``bench_powerprop.masks``:
one-shot pruning, GMP's pruning steps, RigL's and SET's drop step, Top-KAST's sets A and B.
A scorer is one file in this package::

    @SCORERS.register("magnitude")
    class Magnitude(Scorer):
        def score(self, model, inputs=None): ...

Scores are taken on the *effective* weights θ (Powerprop's θ = φ|φ|^(α−1)), so every scorer
works under Powerprop. ``score(name, model, inputs)`` is the shortcut the methods use;
``scorer(name, options).select(model, inputs, keep, scope)`` returns the kept ``Mask`` (one scoring,
or the rounds of an iterative scorer: ``synflow``, ``force``).

Registered: ``magnitude``, ``random`` (data-free), ``snip``, ``grasp``, ``force``, ``obd`` (data), ``synflow``
(data-free: an all-ones input).
"""

from __future__ import annotations

from bench_powerprop.scoring.base import SCORERS, Scorer, ScoringInputs, score, scorer

__all__ = ["SCORERS", "Scorer", "ScoringInputs", "score", "scorer"]
