"""``lottery``: one level of iterative magnitude pruning with rewinding — the lottery ticket (Frankle &
Carbin, "The lottery ticket hypothesis", ICLR 2019, §2 and §5 (LeNet: prune 20% of each hidden layer and
10% of the output layer per round); Frankle, Dziugaite, Roy & Carbin, "Linear mode connectivity and the
lottery ticket hypothesis", ICML 2020 (rewinding to step k > 0)).

A chain of levels is a chain of cells (the ``level`` axis). Level 0 (no ``mask_from``) trains the dense
network and declares ``snapshot_steps: [0, k]``. Level ℓ ≥ 1 declares ``mask_from`` the previous level's
trained model (``level: previous``, step ``final``) and ``init_from`` level 0 at step k. In ``setup`` it
ranks the previous level's *trained* effective weights |θ| among the weights that level kept, removes
``prune_fraction`` of each hidden layer's survivors and ``output_prune_fraction`` of the output layer's
(``layerwise``, the LTH paper) — or the hidden layers' survivors together (``global``, open_lth) — and in
``prepare`` installs the new mask on the rewound weights, so every kept weight starts at exactly its value
at step k of level 0 (k = 0: the original hypothesis). Then the mask is static. Masks are nested across
levels by construction and counts are exact.

Reference code: facebookresearch/open_lth (commit 2ce732f): ``models/mnist_lenet.py`` —
``mnist_lenet_300_100`` defaults ``pruning_strategy='sparse_global'``, ``pruning_fraction=0.2``,
``pruning_layers_to_ignore='fc.weight'`` (the output layer is never pruned), SGD lr 0.1, batch 128, 40
epochs; ``pruning/sparse_global.py`` (the number pruned is ceil(fraction × all remaining weights, output
layer included) taken from the prunable layers); ``--rewinding_steps`` for k. The defaults here follow the
paper (layerwise, 20% / 10%); ``scope: global, output_prune_fraction: 0`` is open_lth's strategy, except
that the fraction applies to the hidden survivors only, with exact counts (round, not ceil).
Deviation: every level trains the full step budget from the rewound weights with a fresh optimiser and
the learning-rate schedule from its start; open_lth trains a rewound level from step k to the end.

Controls on the same level, each a cell with ``mask_from`` this ticket: ``lottery_reinit`` (same mask,
fresh random weights: Evci et al. 2022's "scratch") and ``lottery_scratch`` (a random mask with the same
per-layer counts, fresh weights, any ``init``). ``replicate: r`` (r > 0) trains another ticket of the same
pruning solution (same mask and rewound weights) on another batch order: Evci et al.'s ticket ensembles.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.methods._controls import ReplicateOptions, replicate_suffix
from bench_powerprop.methods._masked import MaskedMethod
from bench_powerprop.methods.base import METHODS
from bench_powerprop.options import OptionError, integer, number, one_of, option

torch = LazyModule("torch")
masks = LazyModule("bench_powerprop.masks")


@dataclass(frozen=True)
class LotteryOptions(ReplicateOptions):
    prune_fraction: float = option(0.2, "fraction of each hidden layer's remaining weights removed per level (LTH §5 LeNet: "
                                   "0.2; open_lth mnist_lenet_300_100: pruning_fraction 0.2)",
                                   check=number(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))
    output_prune_fraction: float = option(0.1, "fraction of the output layer's remaining weights removed per level (LTH: "
                                          "half the hidden rate, 0.1; open_lth: 0, the output layer is ignored)",
                                          check=number(minimum=0, maximum=1, exclusive_maximum=True))
    scope: str = option("layerwise", "layerwise: every hidden layer loses prune_fraction of its survivors (LTH paper); "
                        "global: the hidden layers' survivors are ranked together (open_lth sparse_global)",
                        check=one_of("layerwise", "global"))
    rewind_step: int = option(0, "k: the step of level 0 the survivors are rewound to (0: the original hypothesis); "
                              "must be the step of this cell's init_from", check=integer(minimum=0))

    def check(self, where, cell):
        if not cell.structure.unstructured and self.scope != "layerwise":
            raise OptionError(f"{where}.scope: structure {cell.structure.label()} is pruned layerwise only, got {self.scope!r}")
        if cell.sparsity != 0:
            raise OptionError(f"{where}: a lottery cell's sparsity comes from its level (prune_fraction per level), so its "
                              f"grid sparsity must be 0, got {cell.sparsity:g}")


@METHODS.register("lottery", options=LotteryOptions)
class Lottery(MaskedMethod):
    #: the grid's sparsity is not this method's target: levels set it (level 0 is dense)
    sparse = False
    #: under a structure each level prunes whole groups (layerwise; ``masks.keep_top``), pruned ones scoring −1
    structures = ("unstructured", "n_of_m", "channel", "block")
    accepts_mask_from = True

    @classmethod
    def report_label(cls, options):
        step = options["rewind_step"]
        return ("ticket, rewind to init (k=0)" if step == 0 else f"ticket, rewind to step {step}") + replicate_suffix(options)

    @classmethod
    def check_lineage(cls, options, inherits, cell):
        if cell.level is None:
            raise OptionError("a lottery cell needs a level (level: [0] for the dense start of a chain)")
        if cell.level == 0 and inherits:
            raise OptionError("level 0 of a lottery chain is the dense training every level rewinds to: it inherits nothing")
        if cell.level > 0 and set(inherits) != {"init_from", "mask_from"}:
            raise OptionError(f"lottery level {cell.level} needs mask_from (the previous level, step final) and "
                              "init_from (level 0 at the rewind step)")
        if cell.level > 0 and inherits["init_from"] != options.rewind_step:
            raise OptionError(f"init_from.step {inherits['init_from']!r} is not this cell's rewind_step {options.rewind_step}")

    def setup(self, ctx):
        super().setup(ctx)
        source = ctx.lineage.mask_source
        self.level_mask = None if source is None else self.prune_further(ctx.model, source)
        self.target_counts = self.level_mask.layer_counts() if self.level_mask is not None else dict(self.numels)

    def prepare(self, ctx):
        if self.level_mask is not None:
            self.install(ctx, self.level_mask)

    def after_step(self, ctx):
        self.count_step(ctx)
        if self.level_mask is not None:
            masks.enforce(ctx.model)

    def prune_further(self, model, source) -> object:
        """The previous level's mask minus the smallest trained |θ| among its survivors."""
        previous = source.mask() or masks.Mask.full(model)
        names = list(previous)
        thetas = source.thetas(names)
        scores = {name: thetas[name].abs().float().masked_fill(~previous[name], -1.0) for name in names}
        survivors = previous.layer_counts()
        output, hidden = names[-1], names[:-1]
        fractions = dict.fromkeys(hidden, self.options.prune_fraction) | {output: self.options.output_prune_fraction}
        counts = {name: survivors[name] - round(fractions[name] * survivors[name]) for name in names}
        if not self.structure.unstructured:
            counts = masks.structured_counts({name: tuple(score.shape) for name, score in scores.items()}, counts, self.structure)
            return masks.keep_top(scores, counts, self.structure)
        if self.options.scope == "layerwise":
            return masks.keep_top(scores, counts)
        remaining = sum(survivors[name] for name in hidden)
        pruned = round(self.options.prune_fraction * remaining)
        kept = dict(masks.keep_top_jointly({name: scores[name] for name in hidden}, remaining - pruned))
        kept.update(masks.keep_top({output: scores[output]}, {output: counts[output]}))
        return masks.Mask(kept)

    def report(self, ctx):
        return {**super().report(ctx), "rewind_step": self.options.rewind_step}
