"""Shared machinery of the sparse-training methods (no registered method lives here).

* layer densities: uniform or Erdős–Rényi-Kernel (ERK, Evci et al. 2020, §3 and the
  RigL code's ``get_sparsities_erdos_renyi``), turned into *exact* per-layer counts whose
  sum is exactly ``kept_count(N, 1 − sparsity)``;
* random masks with exact counts, drop/grow of mask entries;
* fresh optimizer state at changed mask positions;
* initialisation of regrown weights (``grow_init``: zeros | initial | random), which matters
  under Powerprop: ∂L/∂φ = α|φ|^(α−1)·∂L/∂θ is 0 at φ = 0 for α > 1, so a weight regrown at
  exactly zero never moves again;
* training-FLOPs accounting relative to dense training (RigL paper, Appendix H).

``MaskedMethod`` is the common base of gmp/rigl/set/static/topkast and
``DynamicSparseMethod`` the drop-and-grow base of rigl and set.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from bench_powerprop.methods.base import Method
from bench_powerprop.powerprop import PowerpropMixin, model_alpha, phi_from_theta, theta_from_phi, weight_layers
from bench_powerprop.pruning import apply_masks, enforce_masks, kept_count, topk_mask

DISTRIBUTIONS = ("erk", "uniform")
GROW_INITS = ("zeros", "initial", "random")
DROP_FRACTION_SCHEDULES = ("cosine", "constant")


# -- options and steps ---------------------------------------------------------------------
def resolve_step(value: Any, total_steps: int, option: str) -> int:
    """A step given as a fraction of training (a float in [0, 1]) or as an absolute step (an int).

    ``0.75`` → round(0.75·total_steps); ``750`` → step 750; ``1.0`` means the end of training.
    """
    if isinstance(value, bool):
        raise ValueError(f"option {option!r}: expected a step or a fraction of training, got {value!r}")
    if isinstance(value, float):
        if 0.0 <= value <= 1.0:
            return int(round(value * total_steps))
        if value.is_integer() and value > 0:
            return int(value)
    elif isinstance(value, int) and value >= 0:
        return value
    raise ValueError(f"option {option!r}: expected a fraction in [0, 1] or a non-negative step, got {value!r}")


def mask_seed(seed: int) -> int:
    """Seed of a method's own generator, decorrelated from ``torch.manual_seed(seed)`` used for the init."""
    return (int(seed) * 1_000_003 + 0x5EED) % (2**63 - 1)


# -- layer densities and exact counts ------------------------------------------------------
def erk_densities(shapes: dict[str, tuple[int, ...]], density: float, dense_layers=(), power_scale: float = 1.0) -> dict[str, float]:
    """Erdős–Rényi-Kernel densities meeting a global ``density``.

    density_l = ε·(Σ dims / Π dims)^power_scale, i.e. (n_in+n_out)/(n_in·n_out) for a linear
    layer and (c_in+c_out+k_h+k_w)/(c_in·c_out·k_h·k_w) for a convolution, with ε chosen so
    that Σ density_l·n_l = density·N. Layers whose density would exceed 1 are made dense and
    ε is recomputed for the rest, one (largest-ratio) group at a time, as RigL's code does.
    Layers in ``dense_layers`` are dense from the start and count against the budget.
    """
    numels = {name: math.prod(shape) for name, shape in shapes.items()}
    total = sum(numels.values())
    raw = {name: (sum(shape) / math.prod(shape)) ** power_scale for name, shape in shapes.items()}
    dense = set(dense_layers)
    epsilon = 0.0
    while True:
        sparse = [name for name in shapes if name not in dense]
        if not sparse:
            break
        budget = density * total - sum(numels[name] for name in dense)
        if budget <= 0:
            raise ValueError(f"density {density:g} cannot be met with dense layers {sorted(dense)}")
        epsilon = budget / sum(raw[name] * numels[name] for name in sparse)
        largest = max(raw[name] for name in sparse)
        if epsilon * largest <= 1 + 1e-12:
            break
        dense.update(name for name in sparse if raw[name] == largest)
    return {name: 1.0 if name in dense else min(1.0, epsilon * raw[name]) for name in shapes}


def uniform_densities(shapes: dict[str, tuple[int, ...]], density: float, dense_layers=()) -> dict[str, float]:
    """The same density in every layer; layers in ``dense_layers`` are dense and count against the budget."""
    numels = {name: math.prod(shape) for name, shape in shapes.items()}
    dense = set(dense_layers)
    rest = sum(n for name, n in numels.items() if name not in dense)
    if rest == 0:
        return {name: 1.0 for name in shapes}
    shared = (density * sum(numels.values()) - sum(numels[name] for name in dense)) / rest
    if not 0 < shared <= 1 + 1e-12:
        raise ValueError(f"density {density:g} cannot be met with dense layers {sorted(dense)}")
    return {name: 1.0 if name in dense else min(1.0, shared) for name in shapes}


def allocate_counts(numels: dict[str, int], densities: dict[str, float], total: int) -> dict[str, int]:
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
            if difference > 0 and counts[name] < numels[name]:
                counts[name] += 1
                difference -= 1
                changed = True
            elif difference < 0 and counts[name] > 1:
                counts[name] -= 1
                difference += 1
                changed = True
            if difference == 0:
                break
        if not changed:
            raise ValueError(f"cannot allocate {total} weights over layers {numels}")
    return counts


def plan_counts(shapes: dict[str, tuple[int, ...]], density: float, distribution: str = "erk",
                dense_layers=(), erk_power_scale: float = 1.0) -> dict[str, int]:
    """Per-layer kept counts for a global ``density``; they sum to ``kept_count(N, density)``."""
    if distribution == "erk":
        densities = erk_densities(shapes, density, dense_layers, erk_power_scale)
    elif distribution == "uniform":
        densities = uniform_densities(shapes, density, dense_layers)
    else:
        raise ValueError(f"unknown layer distribution {distribution!r} (expected one of {DISTRIBUTIONS})")
    numels = {name: math.prod(shape) for name, shape in shapes.items()}
    return allocate_counts(numels, densities, kept_count(sum(numels.values()), density))


def layer_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(layer.weight.shape) for name, layer in weight_layers(model).items()}


# -- masks -----------------------------------------------------------------------------------
def random_mask(shape, count: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """0/1 mask (dtype/device of ``like``) with exactly ``count`` ones at uniformly random positions."""
    numel = math.prod(shape)
    mask = torch.zeros(numel, dtype=like.dtype)
    mask[torch.randperm(numel, generator=generator)[:count]] = 1
    return mask.view(shape).to(like.device)


def drop_and_grow(mask: torch.Tensor, drop_score: torch.Tensor, grow_score: torch.Tensor, count: int):
    """Drop the ``count`` active entries with the lowest ``drop_score``, grow ``count`` with the highest ``grow_score``.

    Grow candidates are all entries not kept after the drop, so an entry just dropped may
    be grown again (as in RigL's code); such an entry counts as unchanged. Returns
    ``(new_mask, newly_active)`` where ``newly_active`` (bool) marks entries inactive before.
    """
    active = mask.reshape(-1) > 0
    n_active = int(active.sum())
    count = min(count, n_active)
    ranked = drop_score.reshape(-1).float().masked_fill(~active, -math.inf)
    kept = topk_mask(ranked, n_active - count) > 0
    candidates = grow_score.reshape(-1).float().masked_fill(kept, -math.inf)
    grown = topk_mask(candidates, count) > 0
    new_active = kept | grown
    return new_active.to(mask.dtype).view_as(mask), (new_active & ~active).view_as(mask)


@torch.no_grad()
def reset_optimizer_state(optimizer: torch.optim.Optimizer, parameter: torch.Tensor, where: torch.Tensor) -> None:
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

    def __init__(self, mode: str, model: nn.Module):
        if mode not in GROW_INITS:
            raise ValueError(f"unknown grow_init {mode!r} (expected one of {GROW_INITS})")
        self.mode = mode
        self.theta0: dict[str, torch.Tensor] = {}
        if mode != "zeros":
            for name, layer in weight_layers(model).items():
                alpha = getattr(layer, "alpha", 1.0)
                self.theta0[name] = theta_from_phi(layer.weight.detach(), alpha).clone()

    def checksum(self) -> float:
        return float(sum(theta.double().abs().sum() for theta in self.theta0.values()))

    @torch.no_grad()
    def phi_values(self, name: str, layer: nn.Module, where: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = int(where.sum())
        alpha = getattr(layer, "alpha", 1.0)
        if self.mode == "zeros" or count == 0:
            return torch.zeros(count, dtype=layer.weight.dtype, device=layer.weight.device)
        theta0 = self.theta0[name]
        if self.mode == "initial":
            theta = theta0[where]
        else:
            theta = theta0.reshape(-1)[torch.randint(theta0.numel(), (count,), generator=generator).to(theta0.device)]
        return phi_from_theta(theta, alpha).to(layer.weight.dtype)


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

    def watch(self, model: nn.Module) -> None:
        """Record each layer's output positions on the next forward pass (then unhook)."""
        for name, layer in weight_layers(model).items():
            if name not in self.positions:
                self._hook_once(name, layer)

    def _hook_once(self, name: str, layer: nn.Module) -> None:
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
    """Base of the sparse methods: option checking, exact counts, FLOPs, report, resumable RNG.

    Subclasses list their options with defaults in ``DEFAULTS``; unknown option names raise.
    ``target_counts`` holds the planned final per-layer kept counts (filled in ``setup``).
    """

    sparse = True
    #: Top-KAST keeps φ dense and masks only the forward; all other methods zero masked φ
    dense_phi: ClassVar[bool] = False
    DEFAULTS: ClassVar[dict] = {}

    def __init__(self, options: dict, sparsity: float, total_steps: int, seed: int):
        super().__init__(options, sparsity, total_steps, seed)
        unknown = sorted(set(self.options) - set(self.DEFAULTS))
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown option(s) {unknown}; known: {sorted(self.DEFAULTS)}")
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"method {self.name!r}: sparsity must be in [0, 1), got {self.sparsity}")
        self.config = {**self.DEFAULTS, **self.options}
        self.density = 1.0 - self.sparsity
        self.generator = torch.Generator().manual_seed(mask_seed(seed))
        self.flops = FlopsMeter()
        self.target_counts: dict[str, int] = {}
        self.numels: dict[str, int] = {}
        self._active: dict[str, tuple[int, int, int]] | None = None

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.numels = {name: layer.weight.numel() for name, layer in weight_layers(model).items()}
        self.flops.watch(model)

    # -- FLOPs bookkeeping ---------------------------------------------------------------
    def masks_changed(self) -> None:
        self._active = None

    def count_step(self, model: nn.Module, dense_weight_grad: bool = False) -> None:
        """Add one training step's FLOPs under the masks the step used (call before changing them)."""
        if self._active is None:
            self._active = {}
            for name, layer in weight_layers(model).items():
                forward_mask = getattr(layer, "weight_mask", None)
                grad_mask = getattr(layer, "weight_grad_mask", None)
                forward = layer.weight.numel() if forward_mask is None else int(forward_mask.sum())
                weight_grad = forward if grad_mask is None else int(grad_mask.sum())
                self._active[name] = (forward, forward, weight_grad)
        counts = self._active
        if dense_weight_grad:
            counts = {name: (f, i, self.numels[name]) for name, (f, i, _) in counts.items()}
        self.flops.add(counts)

    def training_flops_fraction(self) -> float:
        return self.flops.fraction(self.numels)

    # -- report and state ----------------------------------------------------------------
    def report(self, model: nn.Module) -> dict:
        densities = {}
        for name, layer in weight_layers(model).items():
            mask = getattr(layer, "weight_mask", None)
            densities[name] = 1.0 if mask is None else float(mask.sum()) / mask.numel()
        return {
            "training_flops_fraction": self.training_flops_fraction(),
            "layer_density": densities,
            "method_options": self.resolved_options(),
        }

    def resolved_options(self) -> dict:
        return {key: value for key, value in self.config.items()}

    # -- option checks (one-line errors naming the method and the option) -------------------
    def require_choice(self, key: str, choices) -> None:
        if self.config[key] not in choices:
            raise ValueError(f"{self.name}: {key} must be one of {choices}, got {self.config[key]!r}")

    def require_positive_int(self, key: str) -> None:
        value = self.config[key]
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{self.name}: {key} must be a positive integer, got {value!r}")

    def state_dict(self) -> dict:
        return {"flops": self.flops.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.flops.load_state_dict(state["flops"])
        self.generator.set_state(state["generator"])
        self._active = None


class DynamicSparseMethod(MaskedMethod):
    """Random sparse init with ERK/uniform layer counts, then periodic drop-and-grow (RigL, SET).

    Every ``update_every`` steps (step > 0, step < ``end_step``) each sparse layer drops
    floor(d_t·n_active) active weights with the smallest |θ| and grows as many others by
    ``grow_scores``; d_t = drop_fraction·(1 + cos(π·t/end_step))/2 (``cosine``) or constant.
    The update runs in ``after_step`` (after the optimizer step of that iteration), grown
    weights get ``grow_init`` values and fresh optimizer state, and per-layer counts never change.
    """

    DEFAULTS: ClassVar[dict] = {
        "distribution": "erk",          # Evci et al. 2020 §3 / §4.1: ERK is their best-performing distribution
        "erk_power_scale": 1.0,         # RigL code default
        "first_layer_dense": False,     # RigL keeps it dense only with the uniform distribution on ImageNet
        "update_every": 100,            # ΔT = 100 (Evci et al. 2020 §4.1)
        "drop_fraction": 0.3,           # α = 0.3 (Evci et al. 2020 §4.1)
        "drop_fraction_schedule": "cosine",  # f_decay cosine (Evci et al. 2020 §3)
        "end_step": 0.75,               # T_end = 75% of training (Evci et al. 2020 §4.1)
        "grow_init": None,              # None: zeros for α = 1 (published), initial for α > 1 (see module doc)
    }
    #: whether the grow criterion needs the dense gradient (RigL) or not (SET)
    uses_dense_grad: ClassVar[bool] = False

    def __init__(self, options, sparsity, total_steps, seed):
        super().__init__(options, sparsity, total_steps, seed)
        cfg = self.config
        self.require_choice("distribution", DISTRIBUTIONS)
        self.require_choice("drop_fraction_schedule", DROP_FRACTION_SCHEDULES)
        self.require_positive_int("update_every")
        if not 0 <= cfg["drop_fraction"] <= 1:
            raise ValueError(f"{self.name}: drop_fraction must be in [0, 1]")
        if cfg["grow_init"] is not None and cfg["grow_init"] not in GROW_INITS:
            raise ValueError(f"{self.name}: grow_init must be one of {GROW_INITS}, got {cfg['grow_init']!r}")
        self.end_step = resolve_step(cfg["end_step"], self.total_steps, "end_step")
        self.grow_init: str | None = cfg["grow_init"]
        self.regrowth: RegrowthInit | None = None
        self.mask_updates = 0
        self.regrown = 0

    def setup(self, model, optimizer):
        super().setup(model, optimizer)
        if self.grow_init is None:
            self.grow_init = default_grow_init(model_alpha(model))
        self.regrowth = RegrowthInit(self.grow_init, model)  # θ₀ before masks zero φ
        shapes = layer_shapes(model)
        dense_layers = [next(iter(shapes))] if self.config["first_layer_dense"] else []
        self.target_counts = plan_counts(shapes, self.density, self.config["distribution"], dense_layers, self.config["erk_power_scale"])
        like = next(iter(weight_layers(model).values())).weight
        masks = {name: random_mask(shape, self.target_counts[name], self.generator, like) for name, shape in shapes.items()}
        apply_masks(model, masks)
        self.masks_changed()

    def is_update_step(self, step: int) -> bool:
        return 0 < step < self.end_step and step % self.config["update_every"] == 0

    def drop_fraction_at(self, step: int) -> float:
        base = self.config["drop_fraction"]
        if self.config["drop_fraction_schedule"] == "constant":
            return base
        return base * (1 + math.cos(math.pi * step / self.end_step)) / 2

    def before_forward(self, model, step):
        if self.uses_dense_grad and self.is_update_step(step):
            for layer in weight_layers(model).values():
                if isinstance(layer, PowerpropMixin):
                    layer.capture_dense_grad = True

    def after_step(self, model, optimizer, step):
        update = self.is_update_step(step)
        self.count_step(model, dense_weight_grad=update and self.uses_dense_grad)
        if update:
            self.update_masks(model, optimizer, step)
        enforce_masks(model)

    def grow_scores(self, name: str, layer: nn.Module) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def update_masks(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        fraction = self.drop_fraction_at(step)
        for name, layer in weight_layers(model).items():
            mask = getattr(layer, "weight_mask", None)
            if mask is None:
                continue
            n_active = int(mask.sum())
            count = math.floor(fraction * n_active)  # RigL: n_prune = int(n_ones · drop_fraction)
            if count == 0 or n_active == mask.numel():
                continue
            drop_score = theta_from_phi(layer.weight, layer.alpha).abs()
            new_mask, grown = drop_and_grow(mask, drop_score, self.grow_scores(name, layer), count)
            layer.weight[grown] = self.regrowth.phi_values(name, layer, grown, self.generator)
            reset_optimizer_state(optimizer, layer.weight, new_mask != mask)
            layer.weight_mask = new_mask
            self.regrown += int(grown.sum())
        for layer in weight_layers(model).values():
            if isinstance(layer, PowerpropMixin):
                layer.capture_dense_grad = False
                layer.dense_grad = None
        self.mask_updates += 1
        self.masks_changed()

    def resolved_options(self):
        return {**self.config, "grow_init": self.grow_init, "end_step": self.end_step}

    def report(self, model):
        return {**super().report(model), "mask_updates": self.mask_updates, "regrown_weights": self.regrown}

    def state_dict(self):
        return {**super().state_dict(), "mask_updates": self.mask_updates, "regrown": self.regrown,
                "theta0_checksum": self.regrowth.checksum() if self.regrowth else 0.0}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.mask_updates, self.regrown = state["mask_updates"], state["regrown"]
        if self.regrowth is not None and not math.isclose(self.regrowth.checksum(), state["theta0_checksum"], rel_tol=1e-9):
            raise ValueError(f"{self.name}: the initial weights rebuilt in setup differ from those of the checkpoint")
