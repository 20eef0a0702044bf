"""torch.optim's SGD and Adam without the import of ``torch._dynamo`` their methods trigger.

``Optimizer.add_param_group`` / ``zero_grad`` / ``state_dict`` / ``load_state_dict`` are wrapped in
``torch._disable_dynamo`` and ``step`` in ``_use_grad_for_differentiable``; both import
``torch._dynamo`` on first call (0.8 s, a quarter of a digits training job's start-up), only to
guard against ``torch.compile`` tracing, which this harness never uses. These classes call the
wrapped functions directly (``__wrapped__``), with the same gradient mode ``step`` would set
(``differentiable`` is False here, so: no grad). The update arithmetic is torch's own, unchanged;
``tests/test_optimizers.py`` checks it bitwise against the stock optimizers.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


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
