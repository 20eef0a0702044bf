"""What the lottery-ticket controls share: a static mask on *fresh* random weights (no registered method here).

Frankle & Carbin (2019, §2, §5) compare a winning ticket with the same mask on a new random
initialisation ("random reinitialization", ``lottery_reinit``) and Evci et al. (2022, §4) with a
random mask of the same per-layer density trained from scratch (``lottery_scratch``). Both are
cells whose ``mask_from`` is the ticket of the same level, so they share its per-layer counts. The
fresh weights are a new draw of the model's own initialiser under a seed decorrelated from the
cell's (the cell's own seed would rebuild the ticket's level-0 weights), then the ``init`` option
applies (sparse-aware initialisation, Evci et al. 2022). open_lth's controls
(``lottery/branch/randomly_reinitialize.py``, ``randomly_prune.py``, commit 2ce732f) are the same up
to exact counts. Without ``mask_from`` both behave as ``static`` with fresh weights.

``replicate`` (``ReplicateOptions``, shared with ``lottery``): another independent training of the same
start. Evci et al. (2022, §4; google-research/rigl ``rigl_tf2/mlp_configs/lottery.gin`` and
``scratch.gin``, run with ``--seed``) train several tickets of *one* pruning solution (same mask, same
initial weights, other data orders) and several scratch solutions of the same mask (fresh weights, other
data orders), and ensemble solutions of one kind. A replicate r > 0 draws another batch order
(``training.seeds.batch_seed``) and, for these fresh-weights controls, another fresh draw; r = 0 is the
cell's own order and draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods.static import Static, StaticOptions
from bench_powerprop.options import Options, integer, option

sparse_init = LazyModule("bench_powerprop.sparse_init")
models = LazyModule("bench_powerprop.models")


@dataclass(frozen=True)
class ReplicateOptions(Options):
    replicate: int = option(0, "another independent training of the same start (mask and initial weights as r = 0): "
                            "r > 0 draws another batch order and, for the fresh-weights controls, another fresh draw "
                            "(Evci et al. 2022 §4: several tickets of one pruning solution, several scratch runs of one "
                            "mask)", check=integer(minimum=0), neutral=0)


@dataclass(frozen=True)
class ControlOptions(StaticOptions, ReplicateOptions):
    pass


def replicate_suffix(options: dict) -> str:
    """', replicate 2' in a cell's label (none for the first training of a start)."""
    return f", replicate {options['replicate']}" if options.get("replicate") else ""


def fresh_seed(seed: int, replicate: int = 0) -> int:
    """Seed of the fresh draw, decorrelated from the cell's own initialisation seed (and per replicate)."""
    return (int(seed) * 2_654_435_761 + 0xF4E5 + 0x9E37_79B9 * int(replicate)) % (2**63 - 1)


def redraw_weights(ctx, seed: int, replicate: int = 0) -> None:
    """Replace the model's weights by a fresh draw of its own initialiser, decorrelated from the cell's ``seed``."""
    task = ctx.tasks[0]
    sparse_init.redraw(ctx.model, lambda: models.build_model(ctx.spec.model, task.input_shape, task.num_classes),
                       fresh_seed(seed, replicate))


class FreshWeightsControl(Static):
    def prepare(self, ctx):
        redraw_weights(ctx, self.seed, self.options.replicate)
        super().prepare(ctx)
