"""Per-layer weight budgets of a sparse network: uniform or Erdős–Rényi-Kernel, as exact counts.

Follows google-research/rigl ``rigl/sparse_utils.py`` (``get_sparsities_erdos_renyi``,
``get_sparsities_uniform``; commit d39fc7d):

* layers the user keeps dense (``dense_layers``, RigL's ``custom_sparsity_map`` with sparsity 0,
  e.g. the first layer) sit *outside* the budget by default: the other layers together meet the target
  density on their own weights, so the whole network ends up a little denser than the target; with
  ``count_dense`` they sit *inside* it: the whole network keeps ``kept_count(N, density)`` weights, the
  sparse layers' density raised to make room for the dense ones (equal budgets across methods);
* ERK: density_l = ε·(Σ dims / Π dims)^power_scale; a layer whose density would exceed 1 is
  made dense and ε recomputed for the rest, one (largest-ratio) group at a time — these
  automatically densified layers *do* count against the budget, as in the reference;
* densities are turned into integer counts by largest remainder, so the kept weights of the
  budgeted layers sum to exactly ``kept_count(N_budgeted, density)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bench_powerprop.masks import kept_count

DISTRIBUTIONS = ("erk", "uniform")


def erk_densities(shapes: Mapping[str, tuple[int, ...]], density: float, power_scale: float = 1.0) -> dict[str, float]:
    """ERK densities of ``shapes`` whose weighted mean is ``density`` (saturated layers become dense)."""
    numels = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(numels.values())
    raw = {name: (sum(shape) / math.prod(shape)) ** power_scale for name, shape in shapes.items()}
    saturated: set[str] = set()
    epsilon = 0.0
    while True:
        sparse = [name for name in shapes if name not in saturated]
        if not sparse:
            break
        budget = density * total - sum(numels[name] for name in saturated)
        if budget <= 0:
            raise ValueError(f"density {density:g} cannot be met: saturated layers {sorted(saturated)} exceed it")
        epsilon = budget / sum(raw[name] * numels[name] for name in sparse)
        largest = max(raw[name] for name in sparse)
        if epsilon * largest <= 1 + 1e-12:
            break
        saturated.update(name for name in sparse if raw[name] == largest)
    return {name: 1.0 if name in saturated else min(1.0, epsilon * raw[name]) for name in shapes}


def allocate_counts(numels: Mapping[str, int], densities: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer counts close to density_l·n_l (largest remainder) that sum to exactly ``total``.

    Every layer keeps at least one weight; dense layers (density 1) keep all of theirs.
    """
    if not len(numels) <= total <= sum(numels.values()):
        raise ValueError(f"cannot keep {total} weights in {len(numels)} layers of {sum(numels.values())}")
    ideal = {name: densities[name] * numels[name] for name in numels}
    counts = {name: numels[name] if densities[name] >= 1 else min(numels[name], max(1, math.floor(ideal[name]))) for name in numels}
    by_remainder = sorted(numels, key=lambda name: (ideal[name] - counts[name], numels[name]), reverse=True)
    adjustable = [name for name in by_remainder if densities[name] < 1] or by_remainder
    difference = total - sum(counts.values())
    while difference:
        changed = False
        for name in adjustable if difference > 0 else reversed(adjustable):
            step = 1 if difference > 0 else -1
            if (step > 0 and counts[name] < numels[name]) or (step < 0 and counts[name] > 1):
                counts[name] += step
                difference -= step
                changed = True
            if difference == 0:
                break
        if not changed:
            raise ValueError(f"cannot allocate {total} weights over layers {dict(numels)}")
    return counts


def plan_counts(shapes: Mapping[str, tuple[int, ...]], density: float, distribution: str = "erk",
                dense_layers=(), erk_power_scale: float = 1.0, count_dense: bool = False) -> dict[str, int]:
    """Kept weights per layer for a target ``density``.

    ``dense_layers`` keep every weight. Outside the budget (default) the other layers keep exactly
    ``kept_count(N_other, density)`` weights between them; with ``count_dense`` the whole network keeps
    ``kept_count(N, density)`` and the other layers what the dense ones leave, spread by ``distribution``.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown layer distribution {distribution!r} (expected one of {DISTRIBUTIONS})")
    dense = [name for name in shapes if name in set(dense_layers)]
    budgeted = {name: shape for name, shape in shapes.items() if name not in dense}
    counts = {name: math.prod(shapes[name]) for name in dense}
    if not budgeted:
        return counts
    numels = {name: math.prod(shape) for name, shape in budgeted.items()}
    total = kept_count(sum(numels.values()), density)
    if count_dense:
        total = kept_count(sum(math.prod(shape) for shape in shapes.values()), density) - sum(counts.values())
        if total < len(numels):
            raise ValueError(f"the dense layers {dense} hold {sum(counts.values())} weights: density {density:g} of the "
                             f"whole network leaves {max(total, 0)} for the {len(numels)} sparse layers (method options dense_layers, "
                             "dense_in_budget)")
    sparse_density = total / sum(numels.values())
    densities = (erk_densities(budgeted, sparse_density, erk_power_scale) if distribution == "erk"
                 else dict.fromkeys(budgeted, sparse_density))
    counts.update(allocate_counts(numels, densities, total))
    return {name: counts[name] for name in shapes}
