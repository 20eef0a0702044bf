"""The hooks a training method gets, and the registry they are recorded in.

The trainer calls, per step: ``before_forward`` → forward + ``loss_penalty`` →
backward → ``after_backward`` → optimizer step → ``after_step``. Masks live on the
model as buffers (see ``bench_powerprop.powerprop``), so the model's state dict
carries them; ``state_dict``/``load_state_dict`` hold anything else a method needs
to resume exactly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

METHODS: dict[str, type["Method"]] = {}


def register_method(cls: type["Method"]) -> type["Method"]:
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


class Method:
    """Base of all methods; by itself a dense run with no masks. Subclasses override hooks."""

    name: ClassVar[str] = "base"
    #: whether the grid's ``sparsity`` is a target this method reaches (False: dense)
    sparse: ClassVar[bool] = False

    def __init__(self, options: dict, sparsity: float, total_steps: int, seed: int):
        self.options = dict(options)
        self.sparsity = float(sparsity)
        self.total_steps = int(total_steps)
        self.seed = int(seed)

    def setup(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called once on a fresh model, before any checkpoint is restored."""

    def before_forward(self, model: nn.Module, step: int) -> None:
        pass

    def loss_penalty(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def after_backward(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        pass

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
        pass

    def training_flops_fraction(self) -> float:
        """Training FLOPs relative to dense training of the same model (RigL's accounting)."""
        return 1.0

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def report(self, model: nn.Module) -> dict:
        return {"training_flops_fraction": self.training_flops_fraction()}
