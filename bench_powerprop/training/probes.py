"""Measurements taken during training that do not change it: the gradient-flow probe.

``GradientNormProbe`` logs, at chosen steps, the L2 norm of the masked gradient of the *unregularised*
loss on one fixed held-out batch, as Evci, Ioannou, Keskin & Dauphin ("Gradient flow in sparse neural
networks and how lottery tickets win", AAAI 2022, §3) do: official code google-research/rigl
``rigl/rigl_tf2/train.py`` (commit d39fc7d), ``get_gradients(val_x, val_y, is_regularized=False)``, the
gradient of every trainable variable masked by the layer masks, one norm over all of them, the model
in training mode. Here:

* ``grad_norm``: over every trainable parameter as stored — φ for Powerprop layers (∂L/∂φ =
  α|φ|^(α−1)·m·∂L/∂θ, the gradient the optimiser follows), biases and norm parameters;
* ``grad_norm_theta``: the same with the layers' effective weights θ in place of φ (m ⊙ ∂L/∂θ);
  equal to ``grad_norm`` at α = 1.

The batch is ``train.gradient_norm_batch_size`` (default 1000, at most the split) validation examples
drawn once with the cell's seed. Deviation: the reference takes its batch from the training stream
(``ds_train.take``); a held-out batch keeps the probe independent of the data trained on. Buffers
(batch-norm statistics) are restored after each probe, so training is bitwise unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.powerprop import weight_layers
from bench_powerprop.scoring._saliency import computing_with, leaves, masked_thetas


def probe_seed(seed: int) -> int:
    return (int(seed) * 31_337 + 0xBEEF) % (2**63 - 1)


class GradientNormProbe:
    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor], loss_fn, every: int | None, steps):
        self.features, self.labels = batch
        self.loss_fn, self.every, self.steps = loss_fn, every, {int(step) for step in steps}
        self.rows: list[dict] = []

    @classmethod
    def from_spec(cls, spec, task, loss_fn, device) -> GradientNormProbe | None:
        """The probe a cell's ``CellSpec`` asks for (None when its ``train`` section asks for none)."""
        train = spec.train
        every, steps = train.gradient_norm_every, train.gradient_norm_steps
        if every is None and not steps:
            return None
        if not hasattr(task, "held_out_batch"):
            raise ValueError(f"train.gradient_norm_every/steps: data {spec.data['name']!r} has no in-memory validation split to probe")
        size = train.gradient_norm_batch_size
        batch = tuple(tensor.to(device) for tensor in task.held_out_batch(size, probe_seed(spec.seed)))
        return cls(batch, loss_fn, every, steps)

    def due(self, step: int) -> bool:
        return step in self.steps or (self.every is not None and step % self.every == 0)

    def record(self, model: nn.Module, step: int) -> None:
        saved = {name: buffer.clone() for name, buffer in model.named_buffers() if buffer is not None}
        self.rows.append({"step": step, "grad_norm": self._norm_phi(model), "grad_norm_theta": self._norm_theta(model)})
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                if name in saved:
                    buffer.copy_(saved[name])

    def _loss(self, model: nn.Module) -> torch.Tensor:
        return self.loss_fn(model(self.features), self.labels)

    def _norm_phi(self, model: nn.Module) -> float:
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        grads = torch.autograd.grad(self._loss(model), parameters, allow_unused=True)
        return _norm(grads)

    def _norm_theta(self, model: nn.Module) -> float:
        variables = leaves(masked_thetas(model))
        weights = {id(layer.weight) for layer in weight_layers(model).values()}
        others = [parameter for parameter in model.parameters() if parameter.requires_grad and id(parameter) not in weights]
        with computing_with(model, variables):
            grads = torch.autograd.grad(self._loss(model), [*variables.values(), *others], allow_unused=True)
        mask = masks.forward_mask(model)
        masked = [grad * mask[name] if mask is not None and name in mask else grad for name, grad in zip(variables, grads)]
        return _norm([*masked, *grads[len(variables):]])



def _norm(grads) -> float:
    total = sum(float(grad.double().pow(2).sum()) for grad in grads if grad is not None)
    return math.sqrt(total)
