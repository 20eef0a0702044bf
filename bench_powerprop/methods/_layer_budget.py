"""Which layers a sparse method keeps dense, and how the masked methods spread a weight budget over layers.

``dense_layers`` is a typed option of every sparse-training method. Its default (null) is the policy of the
method's own paper (``Method.paper_dense_layers``, each with its source), resolved per cell by
``dense_layer_policy`` and written into the manifest and ``metrics.json`` so the claims page can show it.
``dense_in_budget`` (default true) counts the dense layers against the sparsity target, so methods with
different policies are compared at the same total number of kept weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, boolean, number, one_of, option

masks = LazyModule("bench_powerprop.masks")
budgets = LazyModule("bench_powerprop.budgets")

DISTRIBUTIONS = ("erk", "uniform")
#: policy -> which of the Linear/Conv layers (in order) stay dense
DENSE_LAYER_POLICIES = {
    "none": lambda names: [],
    "first": lambda names: names[:1],
    "last": lambda names: names[-1:],
    "first_last": lambda names: list(dict.fromkeys([names[0], names[-1]])),
}


def dense_layer_names(names: list[str], policy: str) -> list[str]:
    return DENSE_LAYER_POLICIES[policy](list(names))


@dataclass(frozen=True)
class DenseLayersOptions(Options):
    dense_layers: str | None = option(None, "layers kept dense: none, first, last or first_last (the first / last "
                                      "Linear or Conv layer); default (null): the method's paper (see its docstring)",
                                      check=one_of(*DENSE_LAYER_POLICIES, nullable=True))
    dense_in_budget: bool = option(True, "the dense layers count against the sparsity target: the sparse layers' "
                                   "density is raised so the whole network keeps 1 - sparsity of its weights (equal "
                                   "budgets across methods); false: the target applies to the sparse layers only, the "
                                   "dense ones come on top (RigL's custom_sparsity_map)", check=boolean())


@dataclass(frozen=True)
class LayerDistributionOptions(DenseLayersOptions):
    distribution: str = option("erk", "how the weight budget is spread over layers: erk (Evci et al. 2020 §3, "
                               "their best) or uniform", check=one_of(*DISTRIBUTIONS))
    erk_power_scale: float = option(1.0, "exponent on the ERK ratio (RigL code default 1; < 1 is softer)",
                                    check=number(minimum=0, exclusive_minimum=True))


def rigl_dense_layers(options, sparsity: float) -> str:
    """RigL's policy (google-research/rigl README, 'Best Sparse Models'): uniform keeps the first layer dense; ERK
    sparsifies every layer except at 99% sparsity, where the first layer is dense."""
    return "first" if options.distribution == "uniform" or sparsity >= 0.99 else "none"


def plan_layer_counts(model, density: float, options: DenseLayersOptions, policy: str,
                      distribution: str | None = None) -> dict[str, int]:
    shapes = masks.layer_shapes(model)
    return budgets.plan_counts(shapes, density, distribution or options.distribution, dense_layer_names(list(shapes), policy),
                               getattr(options, "erk_power_scale", 1.0), count_dense=options.dense_in_budget)
