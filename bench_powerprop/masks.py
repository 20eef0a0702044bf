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

FORWARD, BACKWARD = "forward", "backward"
_BUFFER = {FORWARD: "weight_mask", BACKWARD: "weight_grad_mask"}


class Mask(Mapping):
    """Kept weights per layer: ``name → bool tensor``. Immutable; set operations return new masks."""

    def __init__(self, layers: Mapping[str, torch.Tensor]):
        self._layers = {name: tensor.detach().bool() for name, tensor in layers.items()}

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


def keep_top(scores: Mapping[str, torch.Tensor], counts: Mapping[str, int]) -> Mask:
    """Per layer, exactly ``counts[name]`` weights with the largest score."""
    return Mask({name: topk(scores[name], counts[name]) for name in counts})


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
          last_layer_keep_factor: float = 1.0, rounding: str = "round") -> Mask:
    """Keep the highest-scoring fraction ``keep`` of the weights; counts by ``rounding`` (``choose``; default exact).

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


def random_mask(shapes: Mapping[str, tuple[int, ...]], counts: Mapping[str, int], generator: torch.Generator) -> Mask:
    """Exactly ``counts[name]`` kept weights per layer at uniformly random positions."""
    layers = {}
    for name, shape in shapes.items():
        numel = math.prod(shape)
        kept = torch.zeros(numel, dtype=torch.bool)
        kept[torch.randperm(numel, generator=generator)[: counts[name]]] = True
        layers[name] = kept.view(shape)
    return Mask(layers)


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
