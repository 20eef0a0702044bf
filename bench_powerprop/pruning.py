"""Exact magnitude masks on effective weights, and applying/holding masks on a model.

A mask is a float tensor of 0/1 with the shape of the weight. Every mask built
here keeps *exactly* the rounded target count (ties broken by ``topk``).
"""

from __future__ import annotations

import torch
from torch import nn

from bench_powerprop.powerprop import PowerpropMixin, convert_layer, effective_weights, weight_layers


def kept_count(numel: int, keep: float) -> int:
    """Number of weights kept for a fraction ``keep`` in (0, 1]; at least one."""
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep}")
    return max(1, min(numel, round(keep * numel)))


def topk_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """0/1 mask (dtype of ``scores``) with ones at the ``k`` largest entries."""
    flat = scores.reshape(-1)
    mask = torch.zeros_like(flat)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = 1
    return mask.view_as(scores)


def layer_keep_fractions(names: list[str], keep: float, last_layer_keep_factor: float) -> dict[str, float]:
    """Per-layer kept fraction: ``keep`` everywhere, min(1, factor·keep) for the output layer."""
    fractions = {name: keep for name in names}
    fractions[names[-1]] = min(1.0, last_layer_keep_factor * keep)
    return fractions


def magnitude_masks(
    model: nn.Module,
    keep: float,
    scope: str = "layerwise",
    last_layer_keep_factor: float = 2.0,
) -> dict[str, torch.Tensor]:
    """Masks keeping the largest |θ| (effective weights) of every Linear/Conv2d weight.

    ``layerwise``: each layer keeps round(keep·n). ``global``: all layers but the
    output layer compete for round(keep·N) weights; the output layer is always
    pruned layerwise with ``last_layer_keep_factor``.
    """
    scores = {name: theta.abs() for name, theta in effective_weights(model).items()}
    names = list(scores)
    fractions = layer_keep_fractions(names, keep, last_layer_keep_factor)
    if scope == "layerwise":
        return {name: topk_mask(scores[name], kept_count(scores[name].numel(), fractions[name])) for name in names}
    if scope == "global":
        return _global_masks(scores, keep, output_layer=names[-1], output_keep=fractions[names[-1]])
    raise ValueError(f"unknown pruning scope {scope!r} (expected 'layerwise' or 'global')")


def _global_masks(scores, keep, output_layer, output_keep):
    hidden = [name for name in scores if name != output_layer]
    masks = {output_layer: topk_mask(scores[output_layer], kept_count(scores[output_layer].numel(), output_keep))}
    if not hidden:
        return masks
    flat = torch.cat([scores[name].reshape(-1) for name in hidden])
    joint = topk_mask(flat, kept_count(flat.numel(), keep))
    for name, chunk in zip(hidden, torch.split(joint, [scores[name].numel() for name in hidden])):
        masks[name] = chunk.view_as(scores[name])
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Install masks on the named weights (converting plain layers with α = 1) and zero masked φ."""
    layers = weight_layers(model)
    for name, mask in masks.items():
        layer = layers[name]
        if not isinstance(layer, PowerpropMixin):
            convert_layer(layer, 1.0)
        layer.weight_mask = mask.to(device=layer.weight.device, dtype=layer.weight.dtype)
    enforce_masks(model)
    return model


@torch.no_grad()
def enforce_masks(model: nn.Module) -> None:
    """Zero φ wherever the forward mask is 0 (after each optimizer step; kept lean: hot path)."""
    for module in model.modules():
        if isinstance(module, PowerpropMixin) and module.weight_mask is not None:
            module.weight.mul_(module.weight_mask)


def masked_layers(model: nn.Module) -> dict[str, PowerpropMixin]:
    return {
        name: layer
        for name, layer in weight_layers(model).items()
        if isinstance(layer, PowerpropMixin) and layer.weight_mask is not None
    }


def layer_sparsities(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero effective weights per layer."""
    return {name: float((theta == 0).float().mean()) for name, theta in effective_weights(model).items()}


def overall_sparsity(model: nn.Module) -> float:
    thetas = list(effective_weights(model).values())
    zeros = sum(int((theta == 0).sum()) for theta in thetas)
    return zeros / sum(theta.numel() for theta in thetas)
