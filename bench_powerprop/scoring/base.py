"""The scorer registry and what a scorer receives (torch-free at import; see ``registry``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import OptionError, Options
from bench_powerprop.registry import Registry

SCORERS = Registry("scorer", "bench_powerprop.scoring")
masks = LazyModule("bench_powerprop.masks")

#: Where weights compete for the kept budget (``masks.prune``): each layer on its own, every layer together
#: (the references' global ranking), or the layers before the output together and the output layer on its own.
SCOPES = ("layerwise", "global", "global_separate_output")
#: How a kept fraction becomes a selection (``masks.choose``): ``exact``, the round(d·n) top-scoring weights, or
#: ``reference``, the count and tie rule of the scorer's reference code (``Scorer.reference_rounding``).
COUNTS = ("exact", "reference")


def check_scope(scope: str, last_layer_keep_factor: float, where: str) -> None:
    """The output layer's own budget exists only where it does not compete with the others."""
    if scope == "global" and last_layer_keep_factor != 1:
        raise OptionError(f"{where}.last_layer_keep_factor: scope 'global' ranks the output layer with every other layer, "
                          f"so it has no factor of its own (use scope 'global_separate_output' or 'layerwise'), "
                          f"got {last_layer_keep_factor!r}")


@dataclass
class ScoringInputs:
    """What a data-dependent scorer may use; data-free scorers ignore it.

    ``batches``: an iterable of (features, labels) — the training context's *separate* seeded
    scoring stream, so scoring never changes the training batches; ``loss_fn``: the training loss;
    ``generator``: a seeded torch.Generator for random scorers; ``mask``: the weights still kept
    (iterative scorers prune further from it), None when dense.
    """

    batches: Iterable[tuple[Any, Any]] | None = None
    loss_fn: Callable | None = None
    generator: Any = None
    mask: Any = None


class Scorer:
    """Base of all scorers. ``score`` returns ``{layer name: float tensor of the weight's shape}``."""

    registry_name: ClassVar[str]
    Options: ClassVar[type[Options]]
    #: whether ``score`` needs ``inputs.batches`` and ``inputs.loss_fn``
    needs_data: ClassVar[bool] = False
    #: the ``masks.choose`` rule of the reference code whose masks ``count: reference`` reproduces: Synaptic-Flow's
    #: (n − int((1 − d)·n) kept, ties at the threshold pruned) for the scorers it implements (magnitude, random,
    #: SNIP, GraSP, SynFlow)
    reference_rounding: ClassVar[str | None] = "synaptic_flow"

    def __init__(self, options: Options | None = None):
        self.options = options if options is not None else self.Options()

    def score(self, model, inputs: ScoringInputs | None = None) -> dict:
        raise NotImplementedError

    def rounding(self, count: str) -> str:
        """The ``masks.choose`` rule of a ``COUNTS`` value."""
        if count == "reference" and self.reference_rounding is None:
            raise ValueError(f"scorer {self.registry_name!r} has no reference code whose count could be reproduced")
        return self.reference_rounding if count == "reference" else "round"

    def select(self, model, inputs: ScoringInputs | None, keep: float, scope: str = "layerwise",
               last_layer_keep_factor: float = 1.0, count: str = "exact", structure=None):
        """The ``Mask`` keeping the fraction ``keep`` of the weights: one scoring, then exact top-k per
        scope (``masks.prune``; with a ``structure``, whole groups ranked by their mean score). Iterative
        scorers (SynFlow, FORCE) override this with their rounds and take no structure."""
        structured = {} if structure is None else {"structure": structure}
        return masks.prune(self.score(model, inputs), keep, scope, last_layer_keep_factor, self.rounding(count), **structured)

    @classmethod
    def scores_once(cls) -> bool:
        """Whether the scorer ranks in one scoring (``Scorer.select``), so its scores can be pooled per group."""
        return cls.select is Scorer.select


def scorer(name: str, options: dict | None = None) -> Scorer:
    """The registered scorer ``name`` with its options (checked, defaults filled in)."""
    scorer_class = SCORERS.get(name)
    return scorer_class(scorer_class.Options.parse(options, f"scorer {name}"))


def score(name: str, model, inputs: ScoringInputs | None = None, **options) -> dict:
    """Scores of the registered scorer ``name`` with the given options."""
    return scorer(name, options).score(model, inputs)
