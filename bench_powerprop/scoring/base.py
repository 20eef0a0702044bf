"""The scorer registry and what a scorer receives (torch-free at import; see ``registry``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options
from bench_powerprop.registry import Registry

SCORERS = Registry("scorer", "bench_powerprop.scoring")
masks = LazyModule("bench_powerprop.masks")


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

    def __init__(self, options: Options | None = None):
        self.options = options if options is not None else self.Options()

    def score(self, model, inputs: ScoringInputs | None = None) -> dict:
        raise NotImplementedError

    def select(self, model, inputs: ScoringInputs | None, keep: float, scope: str = "layerwise",
               last_layer_keep_factor: float = 1.0):
        """The ``Mask`` keeping the fraction ``keep`` of the weights: one scoring, then exact top-k per
        scope (``masks.prune``). Iterative scorers (SynFlow, FORCE) override this with their rounds."""
        return masks.prune(self.score(model, inputs), keep, scope, last_layer_keep_factor)


def scorer(name: str, options: dict | None = None) -> Scorer:
    """The registered scorer ``name`` with its options (checked, defaults filled in)."""
    scorer_class = SCORERS.get(name)
    return scorer_class(scorer_class.Options.parse(options, f"scorer {name}"))


def score(name: str, model, inputs: ScoringInputs | None = None, **options) -> dict:
    """Scores of the registered scorer ``name`` with the given options."""
    return scorer(name, options).score(model, inputs)
