"""``topkast``: Top-K Always Sparse Training (Jayakumar et al., NeurIPS 2020, §2).

Reference code: neuralmagic/sparseml ``src/sparseml/pytorch/sparsification/pruning/
modifier_pruning_topkast.py`` (``TopKASTPruningModifier``); the authors released no code.

Per layer, the forward set A is the top-D weights by |θ| (the ``magnitude`` scorer; D = 1 −
sparsity) and the backward set B ⊇ A the top-(D + M): A is the forward mask and B the backward
mask, so gradients reach B only. φ stays dense — only the forward is sparse — so weights outside A
keep their values and can re-enter A; weights outside B are frozen: their φ is restored after the
optimizer step (undoing momentum) and their optimizer state is kept at zero, so a weight entering
B starts fresh. Reported weights are masked by A.

Exploration penalty (§2.2, "we penalise ... the weights in B \\ A ... scaled by 1/D"), returned by
``loss_penalty`` and added to the loss:
``penalty/2 · Σ_l [ Σ_{A_l} w² + Σ_{B_l∖A_l} w² / D_l ]``, w = φ by default (the stored,
optimised parameter; identical to θ for α = 1) or θ with ``penalty_on: theta``. The penalty
*replaces* ``train.weight_decay`` on the masked weights (the trainer leaves them out of weight
decay); biases and norm parameters keep ``train.weight_decay``.

Defaults: masks recomputed every step (``update_every: 1``), as in the paper. Backward density
2·D (M = D, e.g. forward 90% / backward 80%, one of the paper's ImageNet configurations),
capped at 1; set ``backward_sparsity`` for another. ``penalty`` 1e-4: the usual ResNet-50
weight-decay strength, whose role the penalty takes (our choice; the paper gives no coefficient).
Layer counts are uniform and exact (``bench_powerprop.budgets``). Dense layers: ``dense_layers``, default the
paper's main ImageNet setting, first and last layer dense (§3), counted in the budget unless ``dense_in_budget: false``.

Deviations from sparseml: it applies the penalty as decoupled decay outside the loss (not
through momentum) and scales B∖A by 1/forward_sparsity; we follow the paper (a loss term, 1/D).
"""

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._layer_budget import DenseLayersOptions, dense_layer_names
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods._regrowth import reset_optimizer_state
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import OptionError, integer, number, one_of, option

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")
budgets = LazyModule("bench_powerprop.budgets")
powerprop = LazyModule("bench_powerprop.powerprop")
scoring = LazyModule("bench_powerprop.scoring")


@dataclass(frozen=True)
class TopKASTOptions(DenseLayersOptions):
    backward_sparsity: float | None = option(None, "sparsity of the backward set B; default (null): "
                                             "density 2·D capped at 1", check=number(minimum=0, maximum=1,
                                                                                      exclusive_maximum=True, nullable=True))
    penalty: float = option(1e-4, "coefficient of the exploration penalty (§2.2)", check=number(minimum=0))
    penalty_on: str = option("phi", "weights the penalty acts on: phi (stored) or theta (effective)",
                             check=one_of("phi", "theta"))
    update_every: int = option(1, "steps between recomputations of A and B (paper: every step)",
                               check=integer(minimum=1))

    def check(self, where, cell):
        if self.backward_sparsity is not None and self.backward_sparsity > cell.sparsity:
            raise OptionError(f"{where}.backward_sparsity: {self.backward_sparsity:g} exceeds the forward sparsity "
                              f"{cell.sparsity:g} (B must contain A)")


@METHODS.register("topkast", options=TopKASTOptions)
class TopKAST(MaskedMethod):
    penalty_replaces_weight_decay = True
    keeps_dense_phi = True
    #: Jayakumar et al. 2020, §3 (ImageNet): the first and last layers stay dense
    paper_dense_layers = classmethod(lambda cls, options, sparsity: "first_last")

    def __init__(self, options, cell, seed):
        super().__init__(options, cell, seed)
        if options.backward_sparsity is None:
            self.backward_density = round(min(1.0, 2 * self.density), 12)
        else:
            self.backward_density = round(1.0 - options.backward_sparsity, 12)
        self.backward_counts: dict[str, int] = {}
        self._before_step = None

    def setup(self, ctx):
        super().setup(ctx)
        shapes = masks.layer_shapes(ctx.model)
        self.target_counts = budgets.plan_counts(shapes, self.density, "uniform", dense_layer_names(list(shapes), self.dense_layers),
                                                 count_dense=self.options.dense_in_budget)
        self.backward_counts = {
            name: max(self.target_counts[name], min(n, round(self.backward_density * n))) for name, n in self.numels.items()
        }

    def prepare(self, ctx):
        self.update_masks(ctx)

    @no_grad
    def update_masks(self, ctx):
        scores = scoring.score("magnitude", ctx.model)
        backward = masks.keep_top(scores, self.backward_counts)
        within_backward = {name: scores[name].masked_fill(~backward[name], -1.0) for name in scores}
        self.install(ctx, masks.keep_top(within_backward, self.target_counts))
        self.install(ctx, backward, "backward")

    def before_forward(self, ctx):
        if ctx.step % self.options.update_every == 0 and ctx.step > 0:
            self.update_masks(ctx)

    def loss_penalty(self, ctx):
        coefficient = self.options.penalty
        if not coefficient:
            return None
        total = 0.0
        for name, layer in powerprop.weight_layers(ctx.model).items():
            forward, backward = layer.weight_mask, layer.weight_grad_mask
            density = self.target_counts[name] / self.numels[name]
            exponent = 2.0 if self.options.penalty_on == "phi" else 2.0 * layer.alpha
            weights = forward + (backward - forward) / density
            total = total + (weights * layer.weight.abs().pow(exponent)).sum()
        return 0.5 * coefficient * total

    def after_backward(self, ctx):
        self._before_step = {name: layer.weight.detach().clone() for name, layer in powerprop.weight_layers(ctx.model).items()}

    @no_grad
    def after_step(self, ctx):
        self.count_step(ctx)
        if self._before_step is None:
            return
        frozen = ~masks.backward_mask(ctx.model)
        for name, layer in powerprop.weight_layers(ctx.model).items():
            layer.weight.copy_(torch.where(frozen[name], self._before_step[name], layer.weight))
            reset_optimizer_state(ctx.optimizer, layer.weight, frozen[name])
        self._before_step = None

    def report(self, ctx):
        return {**super().report(ctx), "backward_density": self.backward_density}
