"""The words every table and figure uses for the same things."""

from __future__ import annotations

import math
import re

from bench_powerprop.cells import DEFAULT_VARIANT
from bench_powerprop.training.options import train_options


def alpha_label(alpha: float) -> str:
    """α = 1 is the plain network; anything else is Powerprop."""
    return "α=1 (no Powerprop)" if alpha == 1 else f"α={alpha:g} (Powerprop)"


#: one colour per α in every figure (accuracy, histograms, training curves): α = 1, the plain network, black;
#: Powerprop's α from cool to warm as it grows. An α not listed takes a colour of the same ramp by its size.
ALPHA_COLOURS = {1.0: "#000000", 1.25: "#1f77b4", 1.5: "#17becf", 2.0: "#2ca02c", 3.0: "#ff7f0e", 4.0: "#d62728",
                 5.0: "#9467bd"}


def alpha_colour(alpha: float):
    """The colour of ``alpha`` in every figure (ALPHA_COLOURS; a listed α's neighbour ramp otherwise)."""
    if float(alpha) in ALPHA_COLOURS:
        return ALPHA_COLOURS[float(alpha)]
    import matplotlib

    position = min(1.0, math.log(max(float(alpha), 1e-3)) / math.log(6.0)) if alpha > 0 else 0.0
    return matplotlib.colormaps["plasma"](0.1 + 0.8 * max(0.0, position))


def method_label(method: str, variant: str = DEFAULT_VARIANT) -> str:
    return method if variant == DEFAULT_VARIANT else f"{method} [{variant}]"


def sparsity_label(sparsity: float) -> str:
    return f"{100 * sparsity:g}%" + (" (dense)" if sparsity == 0 else "")


def weights_remaining_label(target_sparsity: float) -> str:
    return f"{100 * (1 - target_sparsity):.2f}%"


def seeds_note(n_diverged: int, n_collapsed: int, n_seeds: int) -> str:
    """' (1/3 diverged, 1/3 at chance)'; empty when every seed trained and none is at chance."""
    parts = []
    if n_diverged:
        parts.append(f"{n_diverged}/{n_seeds} diverged")
    if n_collapsed:
        parts.append(f"{n_collapsed}/{n_seeds} at chance")
    return f" ({', '.join(parts)})" if parts else ""


#: a label's trailing ``seeds_note``
SEEDS_NOTE = re.compile(r" \((?:\d+/\d+ (?:diverged|at chance)(?:, )?)+\)$")


def split_seeds_note(label: str) -> tuple[str, str]:
    """('random', '1/2 at chance') from 'random (1/2 at chance)'; (label, '') without a note."""
    match = SEEDS_NOTE.search(label)
    return (label[:match.start()], match.group(0)[2:-1]) if match else (label, "")


def accuracy_text(mean: float, std: float, n_included: int, n_seeds: int, n_diverged: int, n_collapsed: int) -> str:
    """Test accuracy in %: ``mean ± std`` over the seeds that did not diverge, plus what was left out or at chance."""
    if n_included == 0:
        return f"diverged ({n_diverged}/{n_seeds})"
    value = f"{100 * mean:.1f}" if math.isnan(std) else f"{100 * mean:.1f} ± {100 * std:.1f}"
    return value + seeds_note(n_diverged, n_collapsed, n_seeds)


def budget_text(train_block: dict) -> str:
    train = train_options(train_block)
    momentum = f", momentum {train.momentum:g}" if train.momentum else ""
    decay = f", weight decay {train.weight_decay:g}" if train.weight_decay else ""
    optimiser = train.optimizer.upper() if train.optimizer == "sgd" else train.optimizer
    return (f"{train.steps} steps of batch {train.batch_size}, {optimiser} "
            f"lr {train.lr:g}{momentum}{decay}, {train.lr_schedule} schedule")


STATUS_LEGEND = (
    "Seeds whose training diverged (non-finite loss) are counted and left out of the mean; "
    "seeds at chance accuracy are real results, kept in the mean and counted as \"at chance\"."
)
