"""Options of the masked methods that spread a weight budget over layers, and the per-layer counts they plan."""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import Options, boolean, number, one_of, option

masks = LazyModule("bench_powerprop.masks")
budgets = LazyModule("bench_powerprop.budgets")

DISTRIBUTIONS = ("erk", "uniform")


@dataclass(frozen=True)
class LayerDistributionOptions(Options):
    distribution: str = option("erk", "how the weight budget is spread over layers: erk (Evci et al. 2020 §3, "
                               "their best) or uniform", check=one_of(*DISTRIBUTIONS))
    erk_power_scale: float = option(1.0, "exponent on the ERK ratio (RigL code default 1; < 1 is softer)",
                                    check=number(minimum=0, exclusive_minimum=True))
    first_layer_dense: bool | None = option(None, "keep the first layer dense, outside the budget; "
                                            "default (null): true for uniform (RigL README), false for erk",
                                            check=boolean())

    def keeps_first_layer_dense(self) -> bool:
        return self.distribution == "uniform" if self.first_layer_dense is None else self.first_layer_dense


def plan_layer_counts(model, density: float, options: LayerDistributionOptions) -> dict[str, int]:
    shapes = masks.layer_shapes(model)
    dense_layers = [next(iter(shapes))] if options.keeps_first_layer_dense() else []
    return budgets.plan_counts(shapes, density, options.distribution, dense_layers, options.erk_power_scale)
