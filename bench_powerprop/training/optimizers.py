"""The optimizer and learning-rate schedule of a cell's training (``make_optimizer``,
``learning_rate_factor``), and torch.optim's SGD and Adam without the import of ``torch._dynamo``
their methods trigger.

``Optimizer.add_param_group`` / ``zero_grad`` / ``state_dict`` / ``load_state_dict`` are wrapped in
``torch._disable_dynamo`` and ``step`` in ``_use_grad_for_differentiable``; both import
``torch._dynamo`` on first call (0.8 s, a quarter of a digits training job's start-up), only to
guard against ``torch.compile`` tracing, which this harness never uses. These classes call the
wrapped functions directly (``__wrapped__``), with the same gradient mode ``step`` would set
(``differentiable`` is False here, so: no grad). The update arithmetic is torch's own, unchanged;
``tests/test_optimizers.py`` checks it bitwise against the stock optimizers.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim import Optimizer

from bench_powerprop.powerprop import weight_layers
from bench_powerprop.training.options import TrainOptions


class EagerOptimizerMixin:
    def add_param_group(self, param_group: dict) -> None:
        Optimizer.add_param_group.__wrapped__(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        Optimizer.zero_grad.__wrapped__(self, set_to_none)

    def state_dict(self) -> dict:
        return Optimizer.state_dict.__wrapped__(self)

    def load_state_dict(self, state_dict: dict) -> None:
        Optimizer.load_state_dict.__wrapped__(self, state_dict)

    def step(self, closure=None):
        stock_step = next(cls.step for cls in type(self).__mro__ if cls.__module__.startswith("torch.optim") and "step" in vars(cls))
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return stock_step.__wrapped__(self, closure)


class SGD(EagerOptimizerMixin, torch.optim.SGD):
    pass


class Adam(EagerOptimizerMixin, torch.optim.Adam):
    pass


def make_optimizer(model: nn.Module, train: TrainOptions, method=None) -> torch.optim.Optimizer:
    groups = parameter_groups(model, train.weight_decay, train.weight_decay_exclude_bias_norm,
                              exclude_weights=bool(method and method.penalty_replaces_weight_decay))
    if train.optimizer == "sgd":
        return SGD(groups, lr=train.lr, momentum=train.momentum, nesterov=train.nesterov)
    if train.optimizer == "adam":
        # torch's for-each Adam takes √v through MKL's vector maths (its last bit depends on the CPU); the fused
        # kernel's own vectorised √ is IEEE's on every CPU (docs/numerics.md)
        return Adam(groups, lr=train.lr, fused=True if train.numerics == "portable" else None)
    raise ValueError(f"unknown optimizer {train.optimizer!r}")


def parameter_groups(model: nn.Module, weight_decay: float, exclude_bias_norm: bool, exclude_weights: bool = False) -> list[dict]:
    """Weight decay on Linear/Conv weights only (biases and norm parameters are 1-D).

    ``exclude_weights``: the method's own penalty replaces weight decay on the Linear/Conv
    weights (Top-KAST), so they get none; biases and norm parameters keep ``weight_decay``
    unless ``exclude_bias_norm``.
    """
    layer_weights = {id(layer.weight) for layer in weight_layers(model).values()} if exclude_weights else set()
    decayed, plain = [], []
    for parameter in model.parameters():
        skip = id(parameter) in layer_weights or (exclude_bias_norm and parameter.ndim <= 1)
        (plain if skip else decayed).append(parameter)
    groups = [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def learning_rate_factor(step: int, total: int, train: TrainOptions) -> float:
    """Multiplier of the base lr at ``step`` of ``total`` (per phase): warm-up, then constant, cosine or step decay."""
    warmup = train.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if train.lr_schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if train.lr_schedule == "step":
        passed = sum(step >= boundary for boundary in train.lr_decay_steps)
        return train.lr_decay_factor ** passed
    return 1.0
