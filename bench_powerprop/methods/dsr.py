"""``dsr``: Dynamic Sparse Reparameterization (Mostafa & Wang, "Parameter efficient training of deep convolutional
neural networks by dynamic sparse reparameterization", ICML 2019, Algorithm 1).

Reference code: IntelAI/dynamic-reparameterization (commit 7fe9f43): ``main.py::train`` (the ``--rewire
--threshold-prune --rewire-scaling`` branch: global threshold, proportional re-allocation, threshold update) and
``parameterized_tensors.py::SparseTensor`` (``prune_threshold``, ``grow_random``); defaults from ``main.py``
(``threshold = 1.0e-3``, ``--n-prune-params 600``, the ±10 % band) and the rewire period of
``learning_schedules/wrnet_schedule.yaml`` (100 iterations at the start).

Random sparse start (ERK or uniform per-layer counts, as ``static``). Every ΔT steps (t > 0, begin ≤ t ≤ end),
after the optimizer step as in the reference:

1. prune, in every sparse layer, the active weights with |θ| < H — one threshold H for the whole network
   (a layer never loses its last weight: the reference keeps one); K_l pruned, R_l surviving, K = Σ K_l;
2. re-allocate: grow K weights back, G_l ∝ R_l (the reference's ``rewire_scaling``: each layer's share of
   the surviving weights), at uniformly random positions of the layer that are neither active nor just pruned
   (the reference's ``grow_random(…, pruned_indices)``), so parameters move between layers while the total
   stays exactly the planned count;
3. adapt H toward the target N_p pruned per step: H ← 2H if K < (1 − δ)N_p, H ← H/2 if K > (1 + δ)N_p.

Deviations: the threshold is on the effective weight θ = φ|φ|^(α−1) (identical to the reference at α = 1); N_p
is a fraction of the active sparse weights (``prune_target``), not an absolute count (600 in the reference is
2.3 % of LeNet-300-100's 26.6 k weights at 90 % sparsity); the re-allocation counts are rounded by largest
remainder (the reference puts the rounding difference on a random layer and loops until all are grown), with
a layer's share capped at its free positions; grown weights get ``grow_init`` (the reference grows at zero —
``zeros`` at α = 1 — which under Powerprop, α > 1, is a point the weight never leaves, so ``initial`` there);
the paper keeps the first and last layers of its CNNs dense (``dense_layers`` default ``first_last``, counted in
the budget unless ``dense_in_budget: false``); the reference's sub-kernel granularity and learning-rate-coupled period schedule are not
implemented (one constant ΔT).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._drop_and_grow import DynamicSparseMethod, DynamicSparseOptions
from bench_powerprop.methods._layer_budget import LayerDistributionOptions, dense_layer_names
from bench_powerprop.methods._regrowth import GROW_INITS, reset_optimizer_state
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import integer, number, one_of, option, step_or_fraction

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")
powerprop = LazyModule("bench_powerprop.powerprop")


@dataclass(frozen=True)
class DSROptions(LayerDistributionOptions):
    update_every: int = option(100, "ΔT: steps between re-allocations (reference rewire period at the start: 100)",
                               check=integer(minimum=1))
    begin_step: int | float = option(0, "first step that may re-allocate (fraction of training or step); step 0 never does",
                                     check=step_or_fraction())
    end_step: int | float = option(1.0, "last re-allocation step, inclusive (reference: to the end of training)",
                                   check=step_or_fraction())
    initial_threshold: float = option(1e-3, "H at the start, on |θ| (reference main.py: 1.0e-3)",
                                      check=number(minimum=0, exclusive_minimum=True))
    prune_target: float = option(0.02, "N_p: target number pruned per re-allocation, as a fraction of the active sparse "
                                 "weights (reference: 600 weights)", check=number(minimum=0, maximum=1, exclusive_minimum=True))
    tolerance: float = option(0.1, "δ: H is doubled below (1 − δ)N_p pruned and halved above (1 + δ)N_p (reference: 0.1)",
                              check=number(minimum=0, maximum=1, exclusive_maximum=True))
    grow_init: str | None = option(None, "value of grown weights: zeros | initial | random; default (null): zeros at α = 1 "
                                   "(reference), initial at α > 1 (φ = 0 is a fixed point)",
                                   check=one_of(*GROW_INITS, nullable=True))
    update_mode: str = option("after_step", "after_step: the optimizer steps, then the masks are re-allocated (reference); "
                              "replace_step: a re-allocation iteration takes no optimizer step",
                              check=one_of("replace_step", "after_step"))

    check = DynamicSparseOptions.check  # the same rule: end_step not before begin_step


def threshold_update(threshold: float, pruned: int, target: float, tolerance: float) -> float:
    """Algorithm 1's rule: double H when too few were pruned, halve it when too many, else keep it."""
    if pruned < (1 - tolerance) * target:
        return 2 * threshold
    if pruned > (1 + tolerance) * target:
        return threshold / 2
    return threshold


def proportional_counts(weights: dict[str, int], total: int, capacity: dict[str, int]) -> dict[str, int]:
    """Integers summing to ``total``, proportional to ``weights`` (largest remainder), each at most its ``capacity``.

    A layer at its capacity drops out and the rest is shared among the others in the same proportions.
    """
    if total > sum(capacity.values()):
        raise ValueError(f"cannot place {total} weights in {sum(capacity.values())} free positions")
    counts = dict.fromkeys(weights, 0)
    remaining = total
    while remaining:
        open_layers = [name for name in weights if counts[name] < capacity[name]]
        weight_sum = sum(weights[name] for name in open_layers)
        ideal = {name: remaining * (weights[name] / weight_sum if weight_sum else 1 / len(open_layers)) for name in open_layers}
        share = {name: min(capacity[name] - counts[name], math.floor(ideal[name])) for name in open_layers}
        leftover = remaining - sum(share.values())
        for name in sorted(open_layers, key=lambda name: ideal[name] - math.floor(ideal[name]), reverse=True):
            if leftover and share[name] < capacity[name] - counts[name]:
                share[name] += 1
                leftover -= 1
        for name in open_layers:
            counts[name] += share[name]
        remaining = total - sum(counts.values())
    return counts


@METHODS.register("dsr", options=DSROptions)
class DSR(DynamicSparseMethod):
    """Global adaptive threshold, parameters re-allocated across layers (see the module docstring)."""

    #: Mostafa & Wang 2019: the first and last layers of their networks stay dense
    paper_dense_layers = classmethod(lambda cls, options, sparsity: "first_last")
    #: its redistribution moves weights between layers one at a time: unstructured only
    structures = ("unstructured",)

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.threshold = options.initial_threshold
        self.last_pruned = 0

    def setup(self, ctx):
        super().setup(ctx)
        dense = set(dense_layer_names(list(self.numels), self.dense_layers))
        self.sparse_layers = [name for name in self.numels if name not in dense]

    def update_clock(self, step: int) -> int:
        """DSR's own timing: re-allocation at iteration t after its optimizer step (not rigl's t + 1)."""
        return step

    def is_update_step(self, step: int) -> bool:
        return step > 0 and super().is_update_step(step)

    @no_grad
    def update_masks(self, ctx) -> None:
        current = masks.forward_mask(ctx.model)
        thetas = powerprop.effective_weights(ctx.model)
        pruned = {name: self.below_threshold(current[name], thetas[name]) for name in self.sparse_layers}
        survivors = {name: current[name] & ~pruned[name] for name in self.sparse_layers}
        total_pruned = sum(int(p.sum()) for p in pruned.values())
        growth = self.grow_counts(survivors, pruned, total_pruned)
        layers = powerprop.weight_layers(ctx.model)
        updated = {}
        for name in self.sparse_layers:
            grown = self.grow_positions(survivors[name], pruned[name], growth[name])
            new_kept = survivors[name] | grown
            layer = layers[name]
            layer.weight[grown] = self.regrowth.phi_values(name, layer, grown, self.generator)
            reset_optimizer_state(ctx.optimizer, layer.weight, new_kept != current[name])
            updated[name] = new_kept
            self.regrown += int(grown.sum())
        self.install(ctx, masks.Mask({**current, **updated}))
        self.target_counts = masks.forward_mask(ctx.model).layer_counts()
        active = sum(self.target_counts[name] for name in self.sparse_layers)
        self.threshold = threshold_update(self.threshold, total_pruned, self.options.prune_target * active, self.options.tolerance)
        self.last_pruned = total_pruned
        self.mask_updates += 1

    def below_threshold(self, kept, theta):
        """Active weights with |θ| < H; if that is all of them, the largest one stays (as the reference)."""
        magnitude = theta.abs()
        below = kept & (magnitude < self.threshold)
        if bool(below.sum() == kept.sum()) and bool(kept.any()):
            below.view(-1)[magnitude.masked_fill(~kept, -math.inf).argmax()] = False
        return below

    def grow_counts(self, survivors: dict, pruned: dict, total: int) -> dict[str, int]:
        """K grown weights shared in proportion to each layer's survivors, never at a just-pruned position
        (unless the free positions elsewhere are too few for K: then just-pruned positions are allowed too)."""
        weights = {name: int(kept.sum()) for name, kept in survivors.items()}
        capacity = {name: kept.numel() - weights[name] - int(pruned[name].sum()) for name, kept in survivors.items()}
        if sum(capacity.values()) < total:
            capacity = {name: kept.numel() - weights[name] for name, kept in survivors.items()}
        return proportional_counts(weights, total, capacity)

    def grow_positions(self, survivors, pruned, count: int):
        """``count`` uniformly random positions that are not survivors (nor just pruned, where room allows)."""
        free = ~survivors & ~pruned
        if int(free.sum()) < count:
            free = ~survivors
        draw = torch.rand(survivors.shape, generator=self.generator).to(survivors.device)
        return masks.topk(draw.masked_fill(~free, -1.0), count)

    def report(self, ctx):
        return {**super().report(ctx), "threshold": self.threshold, "last_pruned": self.last_pruned}

    def state_dict(self):
        return {**super().state_dict(), "threshold": self.threshold, "last_pruned": self.last_pruned,
                "target_counts": dict(self.target_counts)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.threshold, self.last_pruned = state["threshold"], state["last_pruned"]
        self.target_counts = dict(state["target_counts"])
