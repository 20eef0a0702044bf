"""The ``Mask`` type, exact top-k selection, and the one place masks meet a model.

A ``Mask`` says which weights of which Linear/Conv layers are kept: layer name
(``"fc1.weight"``) → bool tensor of the weight's shape. Masks are built from scores
(``bench_powerprop.scoring``) with exact counts, combined with set operations, saved and loaded.

A model holds up to two masks (see ``bench_powerprop.powerprop``): the *forward* mask multiplies
θ in the forward pass (and zeroes φ after every step); the *backward* mask, when set, decides
which weights receive gradient (Top-KAST's set B; PackNet's frozen weights). ``install``,
``forward_mask``, ``backward_mask``, ``enforce`` and ``clear`` are the only functions that touch
the layers' mask buffers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from bench_powerprop.powerprop import MASK_BUFFERS, PowerpropMixin, convert_layer, powerprop_layers, weight_layers
from bench_powerprop.structure import UNSTRUCTURED, Structure

FORWARD, BACKWARD = "forward", "backward"
_BUFFER = {FORWARD: "weight_mask", BACKWARD: "weight_grad_mask"}


class Mask(Mapping):
    """Kept weights per layer: ``name → bool tensor``. Immutable; set operations return new masks.

    A mask built with a ``structure`` (``bench_powerprop.structure``) is checked against it here, the one
    place: a layer that breaks it raises ``ValueError`` naming the layer. Set operations give unstructured
    masks (the union of two 2:4 masks is not 2:4).
    """

    def __init__(self, layers: Mapping[str, torch.Tensor], structure: Structure = UNSTRUCTURED):
        self._layers = {name: tensor.detach().bool() for name, tensor in layers.items()}
        self.structure = structure
        for name, kept in self._layers.items():
            problem = structure_violation(kept, structure)
            if problem:
                raise ValueError(f"mask layer {name}: {problem}")

    # -- mapping ----------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._layers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __repr__(self) -> str:
        return f"Mask({len(self)} layers, density {self.density():.4f})"

    # -- counts -----------------------------------------------------------------------------
    def layer_counts(self) -> dict[str, int]:
        return {name: int(kept.sum()) for name, kept in self._layers.items()}

    def count(self) -> int:
        return sum(self.layer_counts().values())

    def numel(self) -> int:
        return sum(kept.numel() for kept in self._layers.values())

    def density(self) -> float:
        return self.count() / self.numel() if self._layers else 1.0

    def sparsity(self) -> float:
        return 1.0 - self.density()

    def layer_density(self) -> dict[str, float]:
        return {name: int(kept.sum()) / kept.numel() for name, kept in self._layers.items()}

    # -- set operations (over the layers both masks name) ------------------------------------
    def _combine(self, other: Mask, operation) -> Mask:
        if set(self) != set(other):
            raise ValueError(f"masks name different layers: {sorted(set(self) ^ set(other))}")
        return Mask({name: operation(kept, other[name].to(kept.device)) for name, kept in self._layers.items()})

    def __or__(self, other: Mask) -> Mask:
        return self._combine(other, torch.logical_or)

    def __and__(self, other: Mask) -> Mask:
        return self._combine(other, torch.logical_and)

    def __sub__(self, other: Mask) -> Mask:
        return self._combine(other, lambda a, b: a & ~b)

    def __invert__(self) -> Mask:
        return Mask({name: ~kept for name, kept in self._layers.items()})

    def issubset(self, other: Mask) -> bool:
        return (self - other).count() == 0

    def __eq__(self, other) -> bool:
        if not isinstance(other, Mask) or set(self) != set(other):
            return NotImplemented if not isinstance(other, Mask) else False
        return all(torch.equal(kept, other[name].to(kept.device)) for name, kept in self._layers.items())

    __hash__ = None

    # -- conversion and storage ------------------------------------------------------------
    def to(self, device) -> Mask:
        return Mask({name: kept.to(device) for name, kept in self._layers.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: kept.cpu().clone() for name, kept in self._layers.items()}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> Mask:
        return cls(state)

    def save(self, path) -> None:
        from bench_powerprop.io import write_bytes_atomic

        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        write_bytes_atomic(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path) -> Mask:
        return cls(torch.load(path, map_location="cpu", weights_only=True))

    @classmethod
    def full(cls, model: nn.Module) -> Mask:
        """Every weight kept (dense)."""
        return cls({name: torch.ones_like(layer.weight, dtype=torch.bool) for name, layer in weight_layers(model).items()})


# -- exact selection ------------------------------------------------------------------------
#: How a kept fraction d of n weights becomes a selection (``choose``). ``round`` (the harness's default)
#: and ``floor`` keep exactly round(d·n) and int(d·n) top-scoring weights (``floor`` is EfficientPackNet's
#: TopK(φ, ⌊s·dim(φ)⌋)). The other two are the reference codes' own rules, their expressions evaluated
#: in the same floating-point order: ``synaptic_flow`` (``Pruners/pruners.py::Pruner._global_mask`` and
#: ``_local_mask``, commit 9dfa57a) prunes every weight scoring <= the k-th smallest score, k = int((1 − d)·n),
#: so n − k are kept (nothing is pruned when k < 1); ``force`` (naver/force ``pruning/pruning_algos.py::
#: get_mask``, commit 7494eed) keeps every weight scoring >= the k-th largest, k = int(d·n). Without ties
#: at the threshold the two reference rules keep exactly ``kept_count`` weights; with ties they keep fewer
#: (Synaptic-Flow) or more (FORCE), as the references do.
ROUNDINGS = ("round", "floor", "synaptic_flow", "force")


def kept_count(numel: int, keep: float, rounding: str = "round") -> int:
    """Number of weights kept for a fraction ``keep`` in (0, 1] by the rule ``rounding`` (no ties); at least one."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    if rounding == "round":
        count = round(keep * numel)
    elif rounding == "synaptic_flow":
        count = numel - int((1.0 - keep) * numel)
    elif rounding in ("floor", "force"):
        count = int(numel * keep)
    else:
        raise ValueError(f"unknown rounding {rounding!r} (expected one of {list(ROUNDINGS)})")
    return max(1, min(numel, count))


def topk(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool tensor (shape of ``scores``) with exactly ``k`` ones at the largest scores (ties by ``topk``)."""
    flat = scores.reshape(-1)
    kept = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        kept[torch.topk(flat.float(), k, sorted=False).indices] = True
    return kept.view(scores.shape)


def choose(scores: torch.Tensor, keep: float, rounding: str = "round") -> torch.Tensor:
    """Bool tensor (shape of ``scores``) of the weights the rule ``rounding`` keeps for the fraction ``keep``."""
    numel = scores.numel()
    if rounding == "synaptic_flow":
        pruned = int((1.0 - keep) * numel)
        if pruned < 1:
            return torch.ones_like(scores, dtype=torch.bool)
        return scores > torch.kthvalue(scores.reshape(-1), pruned).values
    if rounding == "force":
        return scores >= torch.topk(scores.reshape(-1), kept_count(numel, keep, rounding)).values[-1]
    return topk(scores, kept_count(numel, keep, rounding))


def keep_top(scores: Mapping[str, torch.Tensor], counts: Mapping[str, int], structure: Structure = UNSTRUCTURED) -> Mask:
    """Per layer, exactly ``counts[name]`` weights with the largest score (whole groups of a ``structure``,
    ranked by their mean score; its counts must be ``realisable``)."""
    return Mask({name: select_top(scores[name], counts[name], structure) for name in counts}, structure)


def keep_top_jointly(scores: Mapping[str, torch.Tensor], count: int) -> Mask:
    """Exactly ``count`` weights with the largest score over all the given layers together."""
    return _split(scores, topk(_joined(scores), count))


def keep_fractions(scores: Mapping[str, torch.Tensor], fractions: Mapping[str, float], rounding: str = "round") -> Mask:
    """Per layer, the fraction ``fractions[name]`` of the weights with the largest score, by the rule ``rounding``."""
    return Mask({name: choose(scores[name], fractions[name], rounding) for name in fractions})


def keep_fraction_jointly(scores: Mapping[str, torch.Tensor], keep: float, rounding: str = "round") -> Mask:
    """The fraction ``keep`` of the weights with the largest score over all the given layers together, by ``rounding``."""
    return _split(scores, choose(_joined(scores), keep, rounding))


def _joined(scores: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Every layer's scores in one flat tensor, in float32 or the scores' wider type."""
    dtype = torch.promote_types(torch.float32, next(iter(scores.values())).dtype)
    return torch.cat([score.reshape(-1).to(dtype) for score in scores.values()])


def _split(scores: Mapping[str, torch.Tensor], joint: torch.Tensor) -> Mask:
    chunks = torch.split(joint, [score.numel() for score in scores.values()])
    return Mask({name: chunk.view(score.shape) for (name, score), chunk in zip(scores.items(), chunks)})


def layer_keep_fractions(names: list[str], keep: float, last_layer_keep_factor: float) -> dict[str, float]:
    """Per-layer kept fraction: ``keep`` everywhere, min(1, factor·keep) for the output layer."""
    fractions = dict.fromkeys(names, keep)
    fractions[names[-1]] = min(1.0, last_layer_keep_factor * keep)
    return fractions


def prune(scores: Mapping[str, torch.Tensor], keep: float, scope: str = "layerwise",
          last_layer_keep_factor: float = 1.0, rounding: str = "round", structure: Structure = UNSTRUCTURED) -> Mask:
    """Keep the highest-scoring fraction ``keep`` of the weights; counts by ``rounding`` (``choose``; default exact).

    With a ``structure`` (layerwise scope only) each layer keeps the ``realisable`` count nearest its
    fraction in whole groups (``select_top``); the output layer is never channel- or block-pruned.

    Scopes (``SCOPES`` in ``bench_powerprop.scoring.base``):

    * ``layerwise``: each layer keeps the fraction keep of its n_l weights, the output layer
      min(1, last_layer_keep_factor·keep);
    * ``global``: every layer competes for the fraction keep of all N weights (Synaptic-Flow's
      ``global`` scope without ``--dense-classifier``; FORCE); ``last_layer_keep_factor`` must be 1;
    * ``global_separate_output``: the layers before the output layer compete for the fraction keep of
      their weights; the output layer keeps min(1, factor·keep) of its own.
    """
    names = list(scores)
    fractions = layer_keep_fractions(names, keep, last_layer_keep_factor)
    if not structure.unstructured:
        if scope != "layerwise":
            raise ValueError(f"structure {structure.label()} is pruned layerwise only, got scope {scope!r}")
        counts = structured_counts({name: tuple(score.shape) for name, score in scores.items()},
                                   {name: kept_count(score.numel(), fractions[name], rounding) for name, score in scores.items()},
                                   structure)
        return keep_top(scores, counts, structure)
    if scope == "layerwise":
        return keep_fractions(scores, fractions, rounding)
    if scope == "global":
        if last_layer_keep_factor != 1:
            raise ValueError(f"scope 'global' ranks the output layer with the others: last_layer_keep_factor must be 1, "
                             f"got {last_layer_keep_factor}")
        return keep_fraction_jointly(scores, keep, rounding)
    if scope != "global_separate_output":
        raise ValueError(f"unknown pruning scope {scope!r} (expected 'layerwise', 'global' or 'global_separate_output')")
    output, hidden = names[-1], names[:-1]
    selected = dict(keep_fractions({output: scores[output]}, {output: fractions[output]}, rounding))
    if hidden:
        selected.update(keep_fraction_jointly({name: scores[name] for name in hidden}, keep, rounding))
    return Mask({name: selected[name] for name in names})


def random_mask(shapes: Mapping[str, tuple[int, ...]], counts: Mapping[str, int], generator: torch.Generator,
                structure: Structure = UNSTRUCTURED) -> Mask:
    """Exactly ``counts[name]`` kept weights per layer at uniformly random positions (whole groups of a
    ``structure``; its counts must be ``realisable``)."""
    layers = {}
    for name, shape in shapes.items():
        if not structure.unstructured:
            layers[name] = select_random(shape, counts[name], structure, generator)
            continue
        numel = math.prod(shape)
        kept = torch.zeros(numel, dtype=torch.bool)
        kept[torch.randperm(numel, generator=generator)[: counts[name]]] = True
        layers[name] = kept.view(shape)
    return Mask(layers, structure)


# -- structure: groups of weights kept or removed together -------------------------------------
def _as_matrix(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(outputs, inputs, kernel positions) of a Linear (kernel 1) or convolution weight."""
    return shape[0], (shape[1] if len(shape) > 1 else 1), math.prod(shape[2:])


def check_divisible(shape: tuple[int, ...], structure: Structure) -> str | None:
    """Why a weight of ``shape`` cannot be split into the structure's groups, or None."""
    outputs, inputs, _ = _as_matrix(shape)
    if structure.kind == "n_of_m" and inputs % structure.m:
        return f"its {inputs} inputs are not a multiple of m = {structure.m}"
    if structure.kind == "block" and (outputs % structure.rows or inputs % structure.cols):
        return f"its {outputs}×{inputs} weight matrix is not tiled by {structure.rows}×{structure.cols} blocks"
    return None


def grouped(tensor: torch.Tensor, structure: Structure) -> torch.Tensor:
    """``tensor`` (a weight's shape) as a (groups, group size) matrix: one row per group of ``structure``."""
    problem = check_divisible(tuple(tensor.shape), structure)
    if problem:
        raise ValueError(f"structure {structure.label()}: a weight of shape {tuple(tensor.shape)} cannot be grouped: {problem}")
    outputs, inputs, kernel = _as_matrix(tuple(tensor.shape))
    matrix = tensor.reshape(outputs, inputs, kernel)
    if structure.kind == "n_of_m":  # consecutive inputs of one output and kernel position (ASP's m4n2_1d)
        return matrix.permute(0, 2, 1).reshape(-1, structure.m)
    if structure.kind == "channel":
        return matrix.reshape(outputs, -1)
    if structure.kind == "block":
        r, c = structure.rows, structure.cols
        return matrix.reshape(outputs // r, r, inputs // c, c, kernel).permute(0, 2, 1, 3, 4).reshape(-1, r * c * kernel)
    return tensor.reshape(-1, 1)


def ungrouped(groups: torch.Tensor, shape: tuple[int, ...], structure: Structure) -> torch.Tensor:
    """The inverse of ``grouped``: a (groups, group size) matrix back in the weight's ``shape``."""
    outputs, inputs, kernel = _as_matrix(shape)
    if structure.kind == "n_of_m":
        return groups.reshape(outputs, kernel, inputs).permute(0, 2, 1).reshape(shape)
    if structure.kind == "block":
        r, c = structure.rows, structure.cols
        return groups.reshape(outputs // r, inputs // c, r, c, kernel).permute(0, 2, 1, 3, 4).reshape(shape)
    return groups.reshape(shape)


def structure_violation(kept: torch.Tensor, structure: Structure) -> str | None:
    """Why a layer's kept weights break ``structure``, or None. A fully kept layer fits every structure."""
    if structure.unstructured or bool(kept.all()):
        return None
    counts = grouped(kept, structure).sum(1)
    size = structure.m if structure.kind == "n_of_m" else grouped(kept, structure).shape[1]
    allowed = (structure.n, size) if structure.kind == "n_of_m" else (0, size)
    bad = ~((counts == allowed[0]) | (counts == allowed[1]))
    if bad.any():
        return (f"{int(bad.sum())} of its {counts.numel()} {structure.label()} groups keep neither "
                f"{allowed[0]} nor all {size} weights")
    return None


def realisable(shape: tuple[int, ...], count: int, structure: Structure, exempt: bool = False) -> int:
    """The count of kept weights nearest ``count`` that ``structure`` can keep in a weight of ``shape``.

    Channel and block keep whole groups (at least one); N:M turns whole groups of m into n of m, so a
    layer keeps between n/m of its weights and all of them. ``exempt`` layers (the output layer under
    channel or block) stay dense.
    """
    numel = math.prod(shape)
    if structure.unstructured:
        return count
    if exempt:
        return numel
    size = grouped(torch.empty(shape, device="meta"), structure).shape[1]
    groups = numel // size
    if structure.kind == "n_of_m":
        removable = structure.m - structure.n
        return numel - min(groups, max(0, round((numel - count) / removable))) * removable
    return min(groups, max(1, round(count / size))) * size


def structured_counts(shapes: Mapping[str, tuple[int, ...]], counts: Mapping[str, int], structure: Structure) -> dict[str, int]:
    """Each layer's planned count made ``realisable``; the last layer (the output) is exempt from channel and block."""
    output = list(shapes)[-1]
    exempt = structure.kind in ("channel", "block")
    return {name: realisable(shape, counts[name], structure, exempt and name == output) for name, shape in shapes.items()}


def _from_group_choice(shape, chosen: torch.Tensor, within: torch.Tensor | None, structure: Structure) -> torch.Tensor:
    """Kept weights when the groups ``chosen`` are kept (channel, block) or reduced to ``within`` (N:M)."""
    if structure.kind == "n_of_m":
        kept = torch.where(chosen.unsqueeze(1), within, True)
    else:
        kept = chosen.unsqueeze(1).expand(-1, math.prod(shape) // chosen.numel())
    return ungrouped(kept, tuple(shape), structure)


def select_top(scores: torch.Tensor, count: int, structure: Structure = UNSTRUCTURED) -> torch.Tensor:
    """``count`` kept weights with the largest scores, in whole groups of ``structure`` (pooled by their mean).

    N:M keeps each reduced group's n best weights and reduces the groups that lose the least score.
    """
    if structure.unstructured:
        return topk(scores, count)
    numel = scores.numel()
    if count >= numel:
        return torch.ones_like(scores, dtype=torch.bool)
    groups = grouped(scores.float(), structure)
    if structure.kind == "n_of_m":
        within = _rowwise_top(groups, structure.n)
        lost = groups.masked_fill(within, 0).sum(1)
        reduced = (numel - count) // (structure.m - structure.n)
        return _from_group_choice(scores.shape, topk(-lost, reduced), within, structure)
    return _from_group_choice(scores.shape, topk(groups.mean(1), count // groups.shape[1]), None, structure)


def _rowwise_top(groups: torch.Tensor, n: int) -> torch.Tensor:
    kept = torch.zeros_like(groups, dtype=torch.bool)
    return kept.scatter_(1, torch.topk(groups, n, dim=1).indices, True)


def select_random(shape: tuple[int, ...], count: int, structure: Structure, generator: torch.Generator) -> torch.Tensor:
    """``count`` kept weights in uniformly random whole groups of ``structure`` (N:M: random n of each reduced group)."""
    numel = math.prod(shape)
    if count >= numel:
        return torch.ones(shape, dtype=torch.bool)
    groups = grouped(torch.empty(shape, device="meta"), structure).shape[0]
    chosen = torch.zeros(groups, dtype=torch.bool)
    if structure.kind == "n_of_m":
        chosen[torch.randperm(groups, generator=generator)[: (numel - count) // (structure.m - structure.n)]] = True
        within = _rowwise_top(torch.rand(groups, structure.m, generator=generator), structure.n)
        return _from_group_choice(shape, chosen, within, structure)
    chosen[torch.randperm(groups, generator=generator)[: count // (numel // groups)]] = True
    return _from_group_choice(shape, chosen, None, structure)


# -- masks on a model -----------------------------------------------------------------------
def install(model: nn.Module, mask: Mask, which: str = FORWARD, zero_masked: bool = True) -> None:
    """Put ``mask`` on the named layers (plain layers become α = 1 powerprop layers).

    Installing a forward mask zeroes the masked φ, so a masked weight is exactly zero, unless
    ``zero_masked`` is False (Top-KAST keeps φ dense and masks only the forward pass).
    """
    layers = weight_layers(model)
    for name, kept in mask.items():
        layer = layers[name]
        if not isinstance(layer, PowerpropMixin):
            convert_layer(layer, 1.0)
        setattr(layer, _BUFFER[which], kept.to(device=layer.weight.device, dtype=layer.weight.dtype))
        if which == FORWARD:
            layer.zero_outside_mask = zero_masked
            layer.mask_state_checked = layer.masked_phi_stay_zero = False
    if which == FORWARD and zero_masked:
        enforce(model)


def _installed(model: nn.Module, which: str) -> Mask | None:
    layers = {name: getattr(layer, _BUFFER[which], None) for name, layer in weight_layers(model).items()}
    present = {name: buffer for name, buffer in layers.items() if buffer is not None}
    return Mask({name: buffer > 0 for name, buffer in present.items()}) if present else None


def forward_mask(model: nn.Module) -> Mask | None:
    """The installed forward mask (layers without one are absent), or None on a dense model."""
    return _installed(model, FORWARD)


def backward_mask(model: nn.Module) -> Mask | None:
    return _installed(model, BACKWARD)


def clear(model: nn.Module, which: str = FORWARD) -> None:
    for layer in weight_layers(model).values():
        if isinstance(layer, PowerpropMixin):
            setattr(layer, _BUFFER[which], None)
            if which == FORWARD:
                layer.zero_outside_mask = False


def enforce(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Zero φ wherever the forward mask is 0, on layers whose masks were installed with ``zero_masked``.

    The trainer calls it after every optimizer step (as ``enforce_layers``, with the layer list it keeps):
    momentum or Adam state from before a weight was masked would otherwise move it. Given the ``optimizer``,
    the first call after a mask is installed also checks that optimizer's state of the layer: where it is
    exactly zero at every masked position, masked φ stay zero by themselves (φ = 0 and an exact zero gradient
    there, from the mask multiply or from ∂θ/∂φ = α|φ|^(α−1) = 0, give a zero update, zero weight decay and zero
    new state), so the layer is skipped until its mask is installed again; the result is the same to the bit
    (``tests/test_methods.py``, every sparse method).
    """
    enforce_layers(powerprop_layers(model), optimizer)


@torch.no_grad()
def enforce_layers(layers: list[nn.Module], optimizer: torch.optim.Optimizer | None = None) -> None:
    """``enforce`` on a model's ``powerprop_layers``, listed once by the caller: a hot path (walking
    ``model.modules()`` every step cost ~5 % of a small network's step), kept lean."""
    for layer in layers:
        if layer.masked_phi_stay_zero or not layer.zero_outside_mask or layer._buffers.get("weight_mask") is None:
            continue
        layer.weight.mul_(layer.weight_mask)
        if optimizer is not None and not layer.mask_state_checked:
            layer.mask_state_checked = True
            layer.masked_phi_stay_zero = _no_state_where_masked(optimizer, layer)


def _no_state_where_masked(optimizer: torch.optim.Optimizer, layer: nn.Module) -> bool:
    state = optimizer.state.get(layer.weight, {})
    masked = layer.weight_mask == 0
    return all(not value[masked].any() for value in state.values()
               if torch.is_tensor(value) and value.shape == layer.weight.shape)


def buffers(model: nn.Module) -> list[torch.Tensor | None]:
    """Every mask buffer slot of the model's layers, in a fixed order (None where unset)."""
    return [getattr(layer, name, None) for layer in weight_layers(model).values() for name in MASK_BUFFERS]


def layer_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(layer.weight.shape) for name, layer in weight_layers(model).items()}


def zero_fraction(model: nn.Module) -> float:
    """Fraction of effective weights that are exactly zero (≥ the mask's sparsity)."""
    from bench_powerprop.powerprop import effective_weights

    thetas = list(effective_weights(model).values())
    return sum(int((theta == 0).sum()) for theta in thetas) / sum(theta.numel() for theta in thetas)


def layer_zero_fractions(model: nn.Module) -> dict[str, float]:
    from bench_powerprop.powerprop import effective_weights

    return {name: float((theta == 0).float().mean()) for name, theta in effective_weights(model).items()}


def masked_fraction(model: nn.Module, mask: Mask | None) -> float:
    """Fraction of all Linear/Conv weights the forward mask removes (unmasked layers count as dense)."""
    numels = {name: layer.weight.numel() for name, layer in weight_layers(model).items()}
    removed = 0 if mask is None else sum(numels[name] - count for name, count in mask.layer_counts().items())
    return removed / sum(numels.values())
