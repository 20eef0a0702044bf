"""``packnet``: PackNet (Mallya & Lazebnik, CVPR 2018, §3), T tasks packed into one network by iterative pruning.

Reference code: arunmallya/packnet ``src/prune.py`` (``SparsePruner``: ``prune``, ``make_grads_zero``,
``make_finetuning_mask``, ``apply_mask``). As the Powerprop paper's continual-learning section
(Schwarz et al., NeurIPS 2021, §5) uses it, with T known in advance: after training task t on the
free weights (the forward pass uses every weight, earlier tasks' weights frozen), keep the
top-|θ| 1/T of each layer's weights among those still free — exactly round(t·n/T) − round((t−1)·n/T)
in a layer of n weights, so the T tasks split every layer exactly and the last task takes the rest —
retrain briefly with that mask (``retrain_steps``, default 25% of ``train.steps``), then freeze them.
Task t is evaluated with the weights of tasks 1..t (``apply_mask`` in the reference). The machinery
shared with EfficientPackNet (phases, freezing, per-task biases, evaluation) is ``methods/_continual.py``.

``scorer: random`` is the random-mask control: the kept free weights are drawn at random.

Deviations:
* fixed share 1/T per task (the issue's protocol) instead of the paper's pruning percentage;
* per-task biases and a masked, shared output layer instead of per-task classifiers with biases
  fixed after the first task (see ``_continual``);
* free weights start the next task from zero (the reference's pruned weights are zeroed and trained
  from there) only at α = 1; under Powerprop φ = 0 is a fixed point of gradient descent, so by
  default they are re-initialised to their initial θ₀ (``reinit``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule, no_grad
from bench_powerprop.methods._continual import ContinualMethod, ContinualOptions
from bench_powerprop.methods.base import METHODS

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")


def share(numel: int, task: int, tasks: int) -> int:
    """Weights of a layer of ``numel`` that task ``task`` (0-based) of ``tasks`` claims; the shares sum to ``numel``."""
    return round((task + 1) * numel / tasks) - round(task * numel / tasks)


@dataclass(frozen=True)
class PackNetOptions(ContinualOptions):
    pass


@METHODS.register("packnet", options=PackNetOptions)
class PackNet(ContinualMethod):
    @no_grad
    def choose_mask(self, ctx):
        task = len(self.task_masks)
        used = self.used(ctx.model)
        scores = self.scores(ctx)
        free_scores = {name: scores[name].float().masked_fill(used[name], -float("inf")) for name in used}
        counts = {name: share(kept.numel(), task, self.num_tasks) for name, kept in used.items()}
        return used | masks.keep_top(free_scores, counts), {}
