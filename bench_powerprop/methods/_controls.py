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
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods.static import Static

sparse_init = LazyModule("bench_powerprop.sparse_init")
models = LazyModule("bench_powerprop.models")


def fresh_seed(seed: int) -> int:
    """Seed of the fresh draw, decorrelated from the cell's own initialisation seed."""
    return (int(seed) * 2_654_435_761 + 0xF4E5) % (2**63 - 1)


def redraw_weights(ctx, seed: int) -> None:
    """Replace the model's weights by a fresh draw of its own initialiser, decorrelated from the cell's ``seed``."""
    task = ctx.tasks[0]
    sparse_init.redraw(ctx.model, lambda: models.build_model(ctx.spec["model"], task.input_shape, task.num_classes),
                       fresh_seed(seed))


class FreshWeightsControl(Static):
    def prepare(self, ctx):
        redraw_weights(ctx, self.seed)
        super().prepare(ctx)
