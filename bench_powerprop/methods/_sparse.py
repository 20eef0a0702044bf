"""Shared machinery of the sparse methods (no registered method lives here).

* ``MaskedMethod``: exact per-layer counts, the method's own seeded generator, FLOPs, report;
* ``DynamicSparseMethod``: random sparse start, then periodic drop-and-grow (RigL, SET);
* initialisation of regrown weights (``grow_init``), which matters under Powerprop:
  ∂L/∂φ = α|φ|^(α−1)·∂L/∂θ is 0 at φ = 0 for α > 1, so a weight regrown at exactly zero never
  moves again;
* training-FLOPs accounting relative to dense training (RigL paper, Appendix H).

Torch is imported lazily (``bench_powerprop.lazy``): config validation imports the method modules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods.base import Method
from bench_powerprop.options import (
    OptionError,
    Options,
    boolean,
    integer,
    number,
    one_of,
    option,
    resolve_step,
    step_or_fraction,
)

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")
budgets = LazyModule("bench_powerprop.budgets")
powerprop = LazyModule("bench_powerprop.powerprop")
scoring = LazyModule("bench_powerprop.scoring")

DISTRIBUTIONS = ("erk", "uniform")
GROW_INITS = ("zeros", "initial", "random")


def mask_seed(seed: int) -> int:
    """Seed of a method's own generator, decorrelated from ``torch.manual_seed(seed)`` used for the init."""
    return (int(seed) * 1_000_003 + 0x5EED) % (2**63 - 1)


# -- options shared by the masked methods ---------------------------------------------------
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


# -- regrown-weight initialisation ---------------------------------------------------------
def default_grow_init(alpha: float) -> str:
    """``zeros`` (RigL/SET's published choice) only where it is not a fixed point: α = 1."""
    return "zeros" if alpha == 1 else "initial"


class RegrowthInit:
    """Values of φ given to newly grown weights.

    ``zeros``: φ = 0 (published default; for α > 1 such a weight never moves again).
    ``initial``: the weight's own initial value, φ = sign(θ₀)|θ₀|^(1/α).
    ``random``: a fresh draw from the layer's initial distribution, taken as the empirical
    distribution of that layer's θ₀ (so it follows whatever initialiser built the model), mapped to φ.
    θ₀ is read in ``setup`` from the fresh model, so resuming rebuilds it identically.
    """

    def __init__(self, mode: str, model):
        self.mode = mode
        self.theta0 = {} if mode == "zeros" else powerprop.unmasked_effective_weights(model)

    def checksum(self) -> float:
        return float(sum(theta.double().abs().sum() for theta in self.theta0.values()))

    @no_grad
    def phi_values(self, name: str, layer, where, generator):
        count = int(where.sum())
        alpha = getattr(layer, "alpha", 1.0)
        if self.mode == "zeros" or count == 0:
            return torch.zeros(count, dtype=layer.weight.dtype, device=layer.weight.device)
        theta0 = self.theta0[name]
        if self.mode == "initial":
            theta = theta0[where]
        else:
            theta = theta0.reshape(-1)[torch.randint(theta0.numel(), (count,), generator=generator).to(theta0.device)]
        return powerprop.phi_from_theta(theta, alpha).to(layer.weight.dtype)


@no_grad
def reset_optimizer_state(optimizer, parameter, where) -> None:
    """Fresh optimizer state at ``where`` (bool, shape of ``parameter``): zero every per-entry state tensor.

    Covers SGD's momentum buffer and Adam's first/second moments (and max second moment).
    Scalar state such as Adam's step count is shared by the tensor and left alone.
    """
    state = optimizer.state.get(parameter)
    if not state:
        return
    for value in state.values():
        if torch.is_tensor(value) and value.shape == parameter.shape:
            value[where] = 0


# -- FLOPs -----------------------------------------------------------------------------------
class FlopsMeter:
    """Training FLOPs relative to dense training, accumulated step by step (RigL paper, App. H).

    Per layer and step: forward ∝ active weights, backward = gradient w.r.t. the layer input
    (∝ forward-active weights) + gradient w.r.t. the weights (∝ weights whose gradient is
    computed: the forward-active ones, all of them on a step that takes the dense gradient, or
    Top-KAST's backward set). A dense step costs 3·n_l. Each term is multiplied by the layer's
    output positions (1 for a linear layer on flat inputs, H_out·W_out for a convolution).
    For RigL this gives (3·f_S·ΔT + 2·f_S + f_D)/(3·f_D·(ΔT + 1)) per update period.
    """

    def __init__(self):
        self.steps = 0
        self.sums: dict[str, int] = {}
        self.positions: dict[str, int] = {}

    def add(self, counts: dict[str, tuple[int, int, int]]) -> None:
        self.steps += 1
        for name, (forward, input_grad, weight_grad) in counts.items():
            self.sums[name] = self.sums.get(name, 0) + forward + input_grad + weight_grad

    def fraction(self, numels: dict[str, int]) -> float:
        if self.steps == 0:
            return 1.0
        dense = sum(3 * numels[name] * self.positions.get(name, 1) for name in numels) * self.steps
        sparse = sum(self.sums.get(name, 0) * self.positions.get(name, 1) for name in numels)
        return sparse / dense

    def watch(self, model) -> None:
        """Record each layer's output positions on the next forward pass (then unhook)."""
        for name, layer in powerprop.weight_layers(model).items():
            if name not in self.positions:
                self._hook_once(name, layer)

    def _hook_once(self, name: str, layer) -> None:
        handles = []

        def hook(module, inputs, output):
            self.positions.setdefault(name, max(1, output[0].numel() // module.weight.shape[0]))
            handles.pop().remove()

        handles.append(layer.register_forward_hook(hook))

    def state_dict(self) -> dict:
        return {"steps": self.steps, "sums": dict(self.sums), "positions": dict(self.positions)}

    def load_state_dict(self, state: dict) -> None:
        self.steps, self.sums = state["steps"], dict(state["sums"])
        self.positions.update(state["positions"])


# -- method bases ----------------------------------------------------------------------------
class MaskedMethod(Method):
    """Base of the sparse methods: exact counts, FLOPs, report, a resumable seeded generator.

    ``target_counts`` holds the planned final per-layer kept counts (filled in ``setup``).
    """

    sparse = True

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.density = 1.0 - self.sparsity
        self.generator = torch.Generator().manual_seed(mask_seed(seed))
        self.flops = FlopsMeter()
        self.target_counts: dict[str, int] = {}
        self.numels: dict[str, int] = {}
        self._active: dict[str, tuple[int, int, int]] | None = None

    def setup(self, ctx) -> None:
        self.numels = {name: layer.weight.numel() for name, layer in powerprop.weight_layers(ctx.model).items()}
        self.flops.watch(ctx.model)

    def install(self, ctx, mask, which: str = "forward") -> None:
        """Install a mask on the model (``bench_powerprop.masks``) and note that the counts changed."""
        masks.install(ctx.model, mask, which, zero_masked=not self.keeps_dense_phi)
        self._active = None

    # -- FLOPs bookkeeping ---------------------------------------------------------------
    def count_step(self, ctx, dense_weight_grad: bool = False) -> None:
        """Add one training step's FLOPs under the masks the step used (call before changing them)."""
        if self._active is None:
            forward, backward = masks.forward_mask(ctx.model), masks.backward_mask(ctx.model)
            self._active = {}
            for name, numel in self.numels.items():
                active = numel if forward is None or name not in forward else int(forward[name].sum())
                weight_grad = active if backward is None or name not in backward else int(backward[name].sum())
                self._active[name] = (active, active, weight_grad)
        counts = self._active
        if dense_weight_grad:
            counts = {name: (f, i, self.numels[name]) for name, (f, i, _) in counts.items()}
        self.flops.add(counts)

    def training_flops_fraction(self) -> float:
        return self.flops.fraction(self.numels)

    def report(self, ctx) -> dict:
        mask = masks.forward_mask(ctx.model)
        densities = dict.fromkeys(self.numels, 1.0)
        if mask is not None:
            densities.update(mask.layer_density())
        return {**super().report(ctx), "layer_density": densities}

    def state_dict(self) -> dict:
        return {"flops": self.flops.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.flops.load_state_dict(state["flops"])
        self.generator.set_state(state["generator"])
        self._active = None


@dataclass(frozen=True)
class DynamicSparseOptions(LayerDistributionOptions):
    """Options of drop-and-grow methods; defaults are RigL's (Evci et al. 2020 §3, §4.1)."""

    update_every: int = option(100, "ΔT: steps between mask updates (Evci et al. §4.1)", check=integer(minimum=1))
    drop_fraction: float = option(0.3, "fraction of active weights dropped per update at the start (§4.1)",
                                  check=number(minimum=0, maximum=1))
    drop_fraction_schedule: str = option("cosine", "decay of the drop fraction over [begin, end] (§3: cosine)",
                                         check=one_of("cosine", "constant"))
    begin_step: int | float = option(0, "first update step (fraction of training or step); the reference "
                                     "updates at every multiple of ΔT in [begin, end], step 0 included",
                                     check=step_or_fraction())
    end_step: int | float = option(0.75, "last update step, inclusive (T_end = 75% of training, §4.1)",
                                   check=step_or_fraction())
    grow_init: str | None = option(None, "value of grown weights: zeros | initial | random; default (null): "
                                   "zeros at α = 1 (published), initial at α > 1 (φ = 0 is a fixed point)",
                                   check=one_of(*GROW_INITS, nullable=True))
    update_mode: str = option("replace_step", "replace_step: a mask-update iteration takes no optimizer step "
                              "(RigL reference); after_step: the optimizer steps, then the mask is updated",
                              check=one_of("replace_step", "after_step"))

    def check(self, where, cell):
        if resolve_step(self.end_step, cell.steps) < resolve_step(self.begin_step, cell.steps):
            raise OptionError(f"{where}.end_step: {self.end_step!r} is before begin_step {self.begin_step!r}")


class DynamicSparseMethod(MaskedMethod):
    """Random sparse start with ERK/uniform layer counts, then periodic drop-and-grow (RigL, SET).

    Mask updates happen at every step t with begin ≤ t ≤ end and (t − begin) mod ΔT = 0, as in
    ``SparseSETOptimizerBase.is_mask_update_iter`` (google-research/rigl
    ``rigl/sparse_optimizers_base.py``). Each update drops, per sparse layer,
    floor(d_t·n_active) active weights with the smallest |θ| (the ``magnitude`` scorer) and grows as
    many by ``grow_scores``; d_t = drop_fraction·(1 + cos(π·t/(end − begin)))/2 (``cosine``, the
    reference's ``cosine_decay`` of the global step) or constant. Grown weights get ``grow_init``
    values and fresh optimizer state; per-layer counts never change.

    Deviation: the reference adds N(0, 1e-5) noise to the drop scores to break ties at random;
    here ties are broken by ``torch.topk`` (exact counts either way).
    """

    #: whether the grow criterion needs the dense gradient (RigL) or not (SET)
    uses_dense_grad: ClassVar[bool] = False

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.begin = resolve_step(options.begin_step, self.total_steps)
        self.end = resolve_step(options.end_step, self.total_steps)
        self.alpha = cell.alpha
        self.grow_init = options.grow_init or default_grow_init(cell.alpha)
        self.regrowth: RegrowthInit | None = None
        self.mask_updates = 0
        self.regrown = 0

    def setup(self, ctx):
        super().setup(ctx)
        self.regrowth = RegrowthInit(self.grow_init, ctx.model)  # θ₀ before any mask zeroes φ
        self.target_counts = plan_layer_counts(ctx.model, self.density, self.options)

    def prepare(self, ctx):
        shapes = masks.layer_shapes(ctx.model)
        self.install(ctx, masks.random_mask(shapes, self.target_counts, self.generator))

    def is_update_step(self, step: int) -> bool:
        return self.begin <= step <= self.end and (step - self.begin) % self.options.update_every == 0

    def drop_fraction_at(self, step: int) -> float:
        base = self.options.drop_fraction
        if self.options.drop_fraction_schedule == "constant":
            return base
        decay_steps = max(1, self.end - self.begin)
        return base * (1 + math.cos(math.pi * min(step, decay_steps) / decay_steps)) / 2

    def before_forward(self, ctx):
        if self.uses_dense_grad and self.is_update_step(ctx.step):
            ctx.capture_dense_gradients()

    def takes_optimizer_step(self, ctx) -> bool:
        return not (self.options.update_mode == "replace_step" and self.is_update_step(ctx.step))

    def after_step(self, ctx):
        update = self.is_update_step(ctx.step)
        self.count_step(ctx, dense_weight_grad=update and self.uses_dense_grad)
        if update:
            self.update_masks(ctx)

    def grow_scores(self, ctx, name: str, layer):
        raise NotImplementedError

    @no_grad
    def update_masks(self, ctx) -> None:
        fraction = self.drop_fraction_at(ctx.step)
        current = masks.forward_mask(ctx.model)
        drop_scores = scoring.score("magnitude", ctx.model)
        layers = powerprop.weight_layers(ctx.model)
        updated = {}
        for name, kept in current.items():
            n_active = int(kept.sum())
            count = math.floor(fraction * n_active)  # RigL: n_prune = int(n_ones · drop_fraction)
            if count == 0 or n_active == kept.numel():
                continue
            layer = layers[name]
            new_kept, grown = drop_and_grow(kept, drop_scores[name], self.grow_scores(ctx, name, layer), count)
            layer.weight[grown] = self.regrowth.phi_values(name, layer, grown, self.generator)
            reset_optimizer_state(ctx.optimizer, layer.weight, new_kept != kept)
            updated[name] = new_kept
            self.regrown += int(grown.sum())
        if updated:
            self.install(ctx, masks.Mask(updated))
        self.mask_updates += 1

    def report(self, ctx):
        return {**super().report(ctx), "mask_updates": self.mask_updates, "regrown_weights": self.regrown,
                "grow_init": self.grow_init}

    def state_dict(self):
        return {**super().state_dict(), "mask_updates": self.mask_updates, "regrown": self.regrown,
                "theta0_checksum": self.regrowth.checksum() if self.regrowth else 0.0}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.mask_updates, self.regrown = state["mask_updates"], state["regrown"]
        if self.regrowth is not None and not math.isclose(self.regrowth.checksum(), state["theta0_checksum"], rel_tol=1e-9):
            raise ValueError(f"{self.registry_name}: the initial weights rebuilt in setup differ from those of the checkpoint")


def drop_and_grow(kept, drop_score, grow_score, count: int):
    """Drop the ``count`` kept entries with the lowest ``drop_score``, grow ``count`` with the highest ``grow_score``.

    Grow candidates are all entries not kept after the drop, so an entry just dropped may be
    grown again (as in RigL's code); such an entry counts as unchanged. ``kept`` is bool.
    Returns ``(new_kept, newly_active)``, both bool of the mask's shape.
    """
    active = kept.reshape(-1)
    n_active = int(active.sum())
    count = min(count, n_active)
    survivors = masks.topk(drop_score.reshape(-1).float().masked_fill(~active, -math.inf), n_active - count)
    grown = masks.topk(grow_score.reshape(-1).float().masked_fill(survivors, -math.inf), count)
    new_kept = survivors | grown
    return new_kept.view_as(kept), (new_kept & ~active).view_as(kept)
