"""Initialisation of a network whose mask is already fixed (Evci, Ioannou, Keskin & Dauphin, "Gradient
flow in sparse neural networks and how lottery tickets win", AAAI 2022, §3).

* ``sparse_aware`` (the paper's "scaled initialization"): every kept weight of a unit is drawn with
  variance scale / fan, where the fan counts that unit's *active* connections under the mask:
  fan-in of its output unit, fan-out of its input unit, or their average. Official code:
  google-research/rigl ``rigl/rigl_tf2/init_utils.py::unit_scaled_init`` (commit d39fc7d): normal
  (std √(scale/fan)) or uniform (limit √(3·scale/fan)); fans counted over kernel positions for a
  convolution, and floored at 1.
* ``layer_scaled``: the dense initialisation divided by √(layer density) (Liu et al. 2019, and
  ``init_utils.py::layer_scaled_init``) — right on average over a layer, not per unit.
* ``dense``: the model's own initialisation, untouched (masked weights are zeroed by the mask).

Under Powerprop the initial values are for θ; the stored parameter is φ = sign(θ)|θ|^(1/α).
Deviation: ``truncated_normal`` is offered besides normal/uniform — the harness's models initialise
with a fan-in truncated normal (the Powerprop notebook's), so with it only the fan differs from the
dense initialisation; its std is the requested one after truncation to ±2σ, as for those models.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from bench_powerprop import numerics
from bench_powerprop.masks import Mask
from bench_powerprop.models._initializers import TRUNCATED_NORMAL_STD
from bench_powerprop.powerprop import phi_from_theta, theta_from_phi, weight_layers

FANS = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "uniform", "truncated_normal")


def active_fans(kept: torch.Tensor, fan: str) -> torch.Tensor:
    """Per weight (shape of ``kept``): the active fan of its unit(s), at least 1.

    A weight of shape (out, in, *kernel) belongs to output unit ``o`` (fan-in = kept[o].sum()) and
    input unit ``i`` (fan-out = kept[:, i].sum(), over every kernel position).
    """
    kept = kept.float()
    fan_in = kept.reshape(kept.shape[0], -1).sum(1).view(-1, *([1] * (kept.dim() - 1))).expand_as(kept)
    other_dims = [0, *range(2, kept.dim())]
    fan_out = kept.sum(other_dims).view(1, -1, *([1] * (kept.dim() - 2))).expand_as(kept)
    fans = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[fan]
    return fans.clamp(min=1.0)


def unit_scaled(kept: torch.Tensor, fan: str, distribution: str, scale: float, generator: torch.Generator) -> torch.Tensor:
    """θ with every kept weight drawn at variance ``scale`` / (active fan of its unit); zero elsewhere."""
    std = numerics.power(scale / active_fans(kept, fan), 0.5)
    shape = kept.shape
    if distribution == "normal":
        unit = torch.randn(shape, generator=generator)
    elif distribution == "uniform":
        unit = (torch.rand(shape, generator=generator) * 2 - 1) * math.sqrt(3.0)
    else:
        unit = nn.init.trunc_normal_(torch.empty(shape), 0.0, 1.0, -2.0, 2.0, generator=generator) / TRUNCATED_NORMAL_STD
    return (unit.to(kept.device) * std) * kept


def layer_scaled(theta: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """The dense θ divided by √(fraction of the layer kept); zero where not kept."""
    density = max(int(kept.sum()), 1) / kept.numel()
    return theta / math.sqrt(density) * kept


@torch.no_grad()
def initialise(model: nn.Module, mask: Mapping[str, torch.Tensor] | Mask, init: str, fan: str = "fan_in",
               distribution: str = "normal", scale: float = 1.0, generator: torch.Generator | None = None) -> None:
    """Re-initialise the kept weights of every layer named in ``mask`` (``dense``: leave them as they are)."""
    if init == "dense":
        return
    layers = weight_layers(model)
    for name, kept in mask.items():
        layer = layers[name]
        alpha = getattr(layer, "alpha", 1.0)
        on_device = kept.to(layer.weight.device)
        if init == "sparse_aware":
            theta = unit_scaled(on_device, fan, distribution, scale, generator)
        elif init == "layer_scaled":
            theta = layer_scaled(theta_from_phi(layer.weight.detach(), alpha), on_device)
        else:
            raise ValueError(f"unknown init {init!r} (expected dense, sparse_aware or layer_scaled)")
        layer.weight.copy_(phi_from_theta(theta.to(layer.weight.dtype), alpha))


@torch.no_grad()
def redraw(model: nn.Module, build, seed: int) -> None:
    """Load a fresh draw of the model's own initialiser into ``model``: ``build()`` under ``seed`` in a forked RNG
    (the caller's random state is untouched); θ is kept, stored as φ for each layer's α; masks are left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = build().to(next(model.parameters()).device)
    fresh_state = fresh.state_dict()
    layers = weight_layers(model)
    for key, value in model.state_dict().items():
        if key not in fresh_state:
            continue
        source = fresh_state[key]
        layer = layers.get(key)
        value.copy_(phi_from_theta(source, layer.alpha) if layer is not None and hasattr(layer, "alpha") else source)
