"""``adaptive_alpha``: dense Powerprop training whose α is tuned during training by ``AlphaController``.

Source: the "Adaptive Tuning of α" section of the student reproduction report of Powerpropagation
(Schwarz et al., NeurIPS 2021), as quoted in this project's issue; no reference code exists. Every
K = ``every_epochs`` epochs (the report's 3) the method measures the sparsity — the fraction of all
effective weights with |θ| < ε (``epsilon``), under the current α — and asks the controller
(``bench_powerprop.adaptive_alpha``) for the next α. Changing α re-parameterises every powered
layer so that θ is unchanged: φ ← sign(θ)|θ|^(1/α_new) (``powerprop.reparameterise``: float64,
rounded once; θ and the outputs agree to float rounding, bitwise equality is impossible in general).
**Optimizer state of the re-parameterised weights is reset** (momentum / Adam moments of φ under
the old α do not describe φ under the new one; transforming them is singular at φ = 0); biases keep theirs.

``max_alpha`` (our addition; default off, as in the report) caps α: with it off, on digits the
measured sparsity hardly moves, so the controller keeps growing α until training diverges.

``adapt: false`` keeps α fixed and still measures the sparsity at the same times: the fixed-α
baselines of the adaptive-α experiment. ``report`` logs every measurement (step, epoch, sparsity,
α before and after) as ``alpha_trace`` in ``metrics.json``; the first entry is the initial model.

An epoch is ``steps_per_epoch`` steps: by default the task's training images // ``train.batch_size``
(the batch stream draws whole batches from one permutation per epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.adaptive_alpha import AlphaController
from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods.base import METHODS, Method
from bench_powerprop.options import OptionError, Options, boolean, integer, number, option

powerprop = LazyModule("bench_powerprop.powerprop")


@dataclass(frozen=True)
class AdaptiveAlphaOptions(Options):
    adapt: bool = option(True, "tune α with the controller; false: α stays the grid's α and the sparsity is only measured "
                         "(the fixed-α baselines)", check=boolean())
    cr: float = option(1.5, "cr: factor on α − 1 (×cr while sparsity grows in the initial phase, ÷cr when it falls)",
                       check=number(minimum=1, exclusive_minimum=True))
    cd: float = option(0.1, "cd: additive step of α while sparsity grows after the initial phase", check=number(minimum=0))
    epsilon: float = option(1e-2, "ε: a weight counts as sparse when its effective |θ| < ε (absolute; the digits MLP's "
                            "initial |θ| has ~10% of its weights below 0.01)",
                            check=number(minimum=0, exclusive_minimum=True))
    every_epochs: int = option(3, "K: epochs between two measurements (and α updates)", check=integer(minimum=1))
    steps_per_epoch: int | None = option(None, "steps per epoch; default (null): the task's training images // "
                                         "train.batch_size", check=integer(minimum=1, nullable=True))
    max_alpha: float | None = option(None, "cap on α (our addition, not in the report); default (null): no cap",
                                     check=number(minimum=1, exclusive_minimum=True, nullable=True))

    def check(self, where, cell):
        if self.adapt and not cell.alpha > 1:
            raise OptionError(f"{where}.adapt: adaptive α must start above 1 but the grid gives alpha {cell.alpha:g} "
                              "(at α = 1 the geometric phase never moves); use alpha > 1 or adapt: false")
        if self.adapt and self.max_alpha is not None and self.max_alpha < cell.alpha:
            raise OptionError(f"{where}.max_alpha: {self.max_alpha:g} is below the starting alpha {cell.alpha:g}")


@no_grad
def fraction_below(model, epsilon: float) -> float:
    """Fraction of all Linear/Conv effective weights with |θ| < ε."""
    thetas = list(powerprop.effective_weights(model).values())
    return sum(int((theta.abs() < epsilon).sum()) for theta in thetas) / sum(theta.numel() for theta in thetas)


@no_grad
def change_alpha(model, optimizer, alpha: float) -> None:
    """Re-parameterise every powered layer to ``alpha`` (θ kept) and reset the optimizer state of their weights."""
    powerprop.reparameterise(model, alpha)
    for layer in powerprop.weight_layers(model).values():
        optimizer.state.pop(layer.weight, None)


@METHODS.register("adaptive_alpha", options=AdaptiveAlphaOptions)
class AdaptiveAlpha(Method):
    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        self.alpha = float(cell.alpha)
        self.controller = AlphaController(cell.alpha, options.cr, options.cd) if options.adapt else None
        self.steps_per_epoch = options.steps_per_epoch
        self.trace: list[dict] = []

    def setup(self, ctx):
        if self.steps_per_epoch is None:
            train_size = getattr(ctx.task, "train_size", None)
            if train_size is None:
                raise ValueError(f"{self.registry_name}: the data does not say its training-set size; set steps_per_epoch")
            self.steps_per_epoch = max(1, train_size // ctx.spec.train.batch_size)

    def prepare(self, ctx):
        self.measure(ctx.model, 0)

    def after_step(self, ctx):
        done = ctx.step + 1
        if done % (self.options.every_epochs * self.steps_per_epoch) == 0:
            self.measure(ctx.model, done, ctx.optimizer)

    def measure(self, model, steps_done: int, optimizer=None) -> None:
        sparsity = fraction_below(model, self.options.epsilon)
        before = self.alpha
        if self.controller is not None and optimizer is not None:
            self.alpha = self.controller.update(sparsity)
            if self.options.max_alpha is not None and self.alpha > self.options.max_alpha:
                self.alpha = self.controller.alpha = self.options.max_alpha
            change_alpha(model, optimizer, self.alpha)
        self.trace.append({"step": steps_done, "epoch": steps_done / self.steps_per_epoch, "sparsity": sparsity,
                           "alpha": before, "next_alpha": self.alpha})

    def state_dict(self):
        return {"alpha": self.alpha, "trace": [dict(entry) for entry in self.trace],
                "controller": None if self.controller is None else self.controller.state_dict()}

    def load_state_dict(self, state):
        self.alpha, self.trace = state["alpha"], [dict(entry) for entry in state["trace"]]
        if self.controller is not None:
            self.controller.load_state_dict(state["controller"])

    def report(self, ctx):
        return {**super().report(ctx), "final_alpha": self.alpha, "alpha_trace": self.trace}
