"""The ``init`` option of the static-mask methods (``static``, ``pai``, ``lottery_reinit``, ``lottery_scratch``).

Once a method has fixed its mask it may re-initialise the kept weights (``bench_powerprop.sparse_init``):
``dense`` keeps the model's own initialisation, ``sparse_aware`` draws each unit's weights at
variance scale / its active fan (Evci et al. 2022 §3; rigl ``init_utils.py::unit_scaled_init``),
``layer_scaled`` divides the dense initialisation by √(layer density) (Liu et al.). Torch-free at
import: config validation reads these options.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import OptionError, Options, number, one_of, option

sparse_init = LazyModule("bench_powerprop.sparse_init")

INITS = ("dense", "sparse_aware", "layer_scaled")


@dataclass(frozen=True)
class SparseInitOptions(Options):
    init: str = option("dense", "initialisation of the kept weights once the mask is fixed: dense (the model's own), "
                       "sparse_aware (variance scale / active fan of each unit, Evci et al. 2022) or layer_scaled "
                       "(dense ÷ √density, Liu et al.)", check=one_of(*INITS))
    init_fan: str = option("fan_in", "sparse_aware: which active fan sets a weight's variance (fan_in, fan_out, fan_avg)",
                           check=one_of("fan_in", "fan_out", "fan_avg"))
    init_distribution: str = option("normal", "sparse_aware: normal (rigl's gin configs: fanin_normal), uniform, or "
                                    "truncated_normal (the harness models' own initialiser)",
                                    check=one_of("normal", "uniform", "truncated_normal"))
    init_scale: float = option(1.0, "sparse_aware: the variance numerator (rigl's unit_scaled_init default 1.0)",
                               check=number(minimum=0, exclusive_minimum=True))


def init_suffix(options: dict) -> str:
    """' + sparse-aware init' in a cell's label: the init its options re-draw the kept weights with (none when dense)."""
    return "" if options.get("init", "dense") == "dense" else f" + {options['init'].replace('_', '-')} init"


def check_init_not_inherited(options, inherits: dict) -> None:
    """A cell whose weights come from ``init_from`` must not re-initialise them (``Method.check_lineage``)."""
    if "init_from" in inherits and options.init != "dense":
        raise OptionError(f"init_from gives this cell its weights, but its init option {options.init!r} would replace them "
                          "(use init: dense)")


def initialise_kept(ctx, options: SparseInitOptions, generator) -> None:
    """Apply the ``init`` option to the weights kept by the installed forward mask."""
    from bench_powerprop import masks

    mask = masks.forward_mask(ctx.model)
    if mask is not None:
        sparse_init.initialise(ctx.model, mask, options.init, options.init_fan, options.init_distribution, options.init_scale,
                               generator)
