"""A method on a small model, driven in the trainer's order, for property tests of single hooks."""

import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.cell_spec import CellSpec
from bench_powerprop.methods import METHODS
from bench_powerprop.options import CellFacts
from bench_powerprop.powerprop import model_alpha, powerpropify, weight_layers
from bench_powerprop.structure import UNSTRUCTURED
from bench_powerprop.training.context import TrainingContext
from bench_powerprop.training.lineage import Lineage
from bench_powerprop.training.strategy import LocalStrategy

from helpers import digits_spec


def tiny_mlp(alpha=2.0, seed=0):
    torch.manual_seed(seed)
    return powerpropify(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)), alpha)


def batch(seed=1, n=64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 16, generator=generator), torch.randint(0, 4, (n,), generator=generator)


def forward_masks(model):
    return {name: layer.weight_mask.clone() for name, layer in weight_layers(model).items() if layer.weight_mask is not None}


class MethodRun:
    def __init__(self, name, options=None, sparsity=0.75, steps=100, model=None, optimizer=None, seed=0, prepare=True,
                 structure=UNSTRUCTURED):
        self.model = model if model is not None else tiny_mlp()
        self.optimizer = optimizer or torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        method_class = METHODS.get(name)
        facts = CellFacts(sparsity, steps, model_alpha(self.model), structure=structure)
        self.method = method_class(method_class.Options.parse(options or {}, f"methods.{name}", facts), facts, seed)
        self.ctx = TrainingContext(self.model, self.optimizer, CellSpec.from_dict(digits_spec(seed=seed, batch_size=8)), [],
                                   nn.functional.cross_entropy, None, Lineage(), LocalStrategy(torch.device("cpu")),
                                   self.method.phases())
        self.method.setup(self.ctx)
        if prepare:
            self.method.prepare(self.ctx)

    @property
    def step_index(self) -> int:
        return self.ctx.step

    def step(self, data=None, stop_before_after_step=False) -> bool:
        """One training step; returns whether the optimizer stepped."""
        ctx, method = self.ctx, self.method
        x, y = data or batch(seed=100 + ctx.step)
        method.before_forward(ctx)
        loss = nn.functional.cross_entropy(self.model(x), y)
        penalty = method.loss_penalty(ctx)
        self.optimizer.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        method.after_backward(ctx)
        stepped = method.takes_optimizer_step(ctx)
        if stepped:
            self.optimizer.step()
            masks.enforce(self.model)
        if not stop_before_after_step:
            self.finish_step()
        return stepped

    def finish_step(self) -> None:
        self.method.after_step(self.ctx)
        self.ctx.end_step()
