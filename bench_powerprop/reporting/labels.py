"""The words every table and figure uses for the same things."""

from __future__ import annotations

import math
import re

from bench_powerprop.cells import DEFAULT_VARIANT


def alpha_label(alpha: float) -> str:
    """α = 1 is the plain network; anything else is Powerprop."""
    return "α=1 (no Powerprop)" if alpha == 1 else f"α={alpha:g} (Powerprop)"


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


def budget_text(train: dict) -> str:
    optimiser = train.get("optimizer", "sgd")
    momentum = f", momentum {train['momentum']:g}" if train.get("momentum") else ""
    decay = f", weight decay {train['weight_decay']:g}" if train.get("weight_decay") else ""
    return (f"{train['steps']} steps of batch {train['batch_size']}, {optimiser.upper() if optimiser == 'sgd' else optimiser} "
            f"lr {train['lr']:g}{momentum}{decay}, {train.get('lr_schedule', 'constant')} schedule")


STATUS_LEGEND = (
    "Seeds whose training diverged (non-finite loss) are counted and left out of the mean; "
    "seeds at chance accuracy are real results, kept in the mean and counted as \"at chance\"."
)
