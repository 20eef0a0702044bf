"""Gradients with respect to the effective weights θ, for the scorers that need them.

A Powerprop layer stores φ and computes θ = φ|φ|^(α−1); pruning-at-initialisation saliencies are
defined on θ, the weight the network computes with (G = ∂R/∂θ ⊙ θ). ``computing_with`` makes the
model's forward use given θ tensors (fresh autograd leaves) as its layers' effective weights, so
``torch.autograd.grad`` returns ∂R/∂θ directly — for every α, with no division by α|φ|^(α−1).
Masks installed on the model are bypassed inside the context: the caller passes θ ⊙ m where it
wants the pruned network. The model itself is never changed (plain Linear/Conv layers are
converted to α = 1 Powerprop layers first, which is bit-identical, as ``masks.install`` does).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from bench_powerprop.powerprop import PowerpropMixin, convert_layer, effective_weights, weight_layers


def leaves(thetas: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies of ``thetas`` that require grad (the variables saliencies differentiate by)."""
    return {name: theta.detach().clone().requires_grad_(True) for name, theta in thetas.items()}


def masked_thetas(model: nn.Module, mask=None) -> dict[str, torch.Tensor]:
    """The effective weights the network computes with: θ under the installed mask, times ``mask`` when given."""
    thetas = effective_weights(model)
    if mask is not None:
        thetas = {name: theta * mask[name].to(theta.device, theta.dtype) for name, theta in thetas.items()}
    return thetas


@contextmanager
def computing_with(model: nn.Module, thetas: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Inside the context, layer ``name`` computes with ``thetas[name]`` as its effective weight."""
    layers = weight_layers(model)
    for name, theta in thetas.items():
        if not isinstance(layers[name], PowerpropMixin):
            convert_layer(layers[name], 1.0)
        layers[name].effective_weight = _constant(theta)  # an instance attribute shadows the method
    try:
        yield
    finally:
        for name in thetas:
            del layers[name].effective_weight


def _constant(theta: torch.Tensor):
    return lambda: theta


MODES = ("train", "eval")


@contextmanager
def scoring_mode(model: nn.Module, mode: str = "eval") -> Iterator[None]:
    """Score in ``mode``: ``eval`` (batch norm uses its running statistics; Synaptic-Flow's ``prune_loop``
    default) or ``train`` (batch statistics, as FORCE's and GraSP's reference scripts, which score a model
    in its initial train mode). In train mode the forward passes would update batch norm's running
    statistics: every buffer is restored afterwards, so scoring never changes the model."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r} (expected one of {list(MODES)})")
    was_training = model.training
    saved = {name: buffer.detach().clone() for name, buffer in model.named_buffers()} if mode == "train" else {}
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved:
                    buffer.copy_(saved[name])


def batch_loss(model: nn.Module, batch, loss_fn, temperature: float = 1.0) -> torch.Tensor:
    features, labels = batch
    return loss_fn(model(features) / temperature, labels)


def loss_gradients(model: nn.Module, thetas: Mapping[str, torch.Tensor], batches, loss_fn, temperature: float = 1.0,
                   reduce: str = "sum", mode: str = "eval") -> dict[str, torch.Tensor]:
    """∂L/∂θ at ``thetas``, summed (or averaged) over the batches; L = loss_fn(logits / temperature, labels);
    the model in ``mode`` (``scoring_mode``)."""
    variables = leaves(thetas)
    total = {name: torch.zeros_like(theta) for name, theta in variables.items()}
    batches = list(batches)
    with scoring_mode(model, mode), computing_with(model, variables):
        for batch in batches:
            grads = torch.autograd.grad(batch_loss(model, batch, loss_fn, temperature), list(variables.values()))
            for name, grad in zip(variables, grads):
                total[name] += grad
    if reduce == "mean":
        total = {name: grad / len(batches) for name, grad in total.items()}
    return total


def hessian_gradient_product(model: nn.Module, thetas: Mapping[str, torch.Tensor], batches, loss_fn,
                             vector: Mapping[str, torch.Tensor], temperature: float = 1.0,
                             mode: str = "eval") -> dict[str, torch.Tensor]:
    """Σ_b H_b·v at ``thetas`` by double backpropagation: ∂/∂θ (∂L_b/∂θ · v), v held constant; the model in ``mode``."""
    variables = leaves(thetas)
    total = {name: torch.zeros_like(theta) for name, theta in variables.items()}
    with scoring_mode(model, mode), computing_with(model, variables):
        for batch in batches:
            grads = torch.autograd.grad(batch_loss(model, batch, loss_fn, temperature), list(variables.values()), create_graph=True)
            dot = sum((grad * vector[name].detach()).sum() for name, grad in zip(variables, grads))
            for name, hv in zip(variables, torch.autograd.grad(dot, list(variables.values()))):
                total[name] += hv
    return total


def schedule_density(keep: float, round_index: int, rounds: int, schedule: str) -> float:
    """Kept fraction after round ``round_index`` (1-based) of ``rounds`` towards ``keep``:
    exponential keep^(r/R) (SynFlow's and FORCE's default) or linear 1 − (1 − keep)·r/R."""
    if schedule == "exponential":
        return keep ** (round_index / rounds)
    return 1.0 - (1.0 - keep) * round_index / rounds


def input_shape(model: nn.Module, inputs) -> tuple[int, ...]:
    """The shape of one input: from a scoring batch when given, else the first layer's fan-in (an MLP)."""
    if inputs is not None and inputs.batches:
        return tuple(next(iter(inputs.batches))[0].shape[1:])
    first = next(iter(weight_layers(model).values()))
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ValueError("scorer: the input shape of a convolutional model is unknown without a scoring batch")


def synflow_flow(model: nn.Module, thetas: Mapping[str, torch.Tensor], shape: tuple[int, ...]) -> tuple[torch.Tensor, dict]:
    """R = 1ᵀ(∏|W_l|)1 and ∂R/∂θ on the absolute-valued network with an all-ones input (Tanaka et al. 2020, eq. 2).

    Computed on a float64 copy in eval mode whose every parameter and buffer is replaced by its
    absolute value (Synaptic-Flow's ``linearize``), so the model itself is untouched.
    """
    linear = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in linear.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    variables = leaves({name: theta.double().abs() for name, theta in thetas.items()})
    device = next(iter(variables.values())).device
    with computing_with(linear, variables):
        flow = linear(torch.ones((1, *shape), dtype=torch.float64, device=device)).sum()
        grads = torch.autograd.grad(flow, list(variables.values()))
    return flow.detach(), dict(zip(variables, grads))
