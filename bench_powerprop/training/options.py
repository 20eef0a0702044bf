"""Every training setting of a cell (a config's ``train`` block): its default, its help and its check.

``TrainOptions.parse(raw, where)`` fills in every default and checks every value (one-line errors
naming the field), like the options of methods, scorers, datasets and models. The plan records the
parsed settings in each cell's training spec, so a changed default changes the spec hash of exactly
the cells whose training it changes. Torch-free: config validation imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.options import CellFacts, OptionError, Options, boolean, integer, list_of, number, one_of, option


@dataclass(frozen=True)
class TrainOptions(Options):
    REQUIRED = ("steps", "batch_size", "lr")

    steps: int = option(None, "training steps of each phase (required)", check=integer(minimum=1, maximum=100_000_000))
    batch_size: int = option(None, "examples per step (required)", check=integer(minimum=1, maximum=1_000_000))
    lr: float = option(None, "base learning rate (required)", check=number(minimum=0, exclusive_minimum=True))
    optimizer: str = option("sgd", "sgd or adam", check=one_of("sgd", "adam"))
    momentum: float = option(0.0, "SGD momentum", check=number(minimum=0, maximum=1, exclusive_maximum=True))
    nesterov: bool = option(False, "Nesterov momentum (SGD)", check=boolean())
    weight_decay: float = option(0.0, "L2 weight decay on Linear/Conv weights", check=number(minimum=0))
    weight_decay_exclude_bias_norm: bool = option(True, "no weight decay on biases and norm parameters", check=boolean())
    lr_schedule: str = option("constant", "constant, cosine or step (after the warm-up)",
                              check=one_of("constant", "cosine", "step"))
    lr_decay_steps: tuple[int, ...] = option((), "steps at which the step schedule multiplies the lr by lr_decay_factor",
                                             check=list_of(integer(minimum=0)))
    lr_decay_factor: float = option(0.1, "the step schedule's factor", check=number(minimum=0, exclusive_minimum=True))
    warmup_steps: int = option(0, "linear warm-up steps", check=integer(minimum=0))
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy loss",
                                    check=number(minimum=0, maximum=1, exclusive_maximum=True))
    log_every: int = option(100, "steps between two lines of the training log", check=integer(minimum=1))
    eval_every: int = option(500, "steps between two validation evaluations", check=integer(minimum=1))
    checkpoint_every: int = option(1000, "steps between two checkpoints", check=integer(minimum=1),
                                   identity=False)
    threads: int = option(1, "torch CPU threads of the training job", check=integer(minimum=1, maximum=1024))
    numerics: str = option("portable", "portable: CPU kernels pinned so every x86-64 AVX2 machine, Intel or AMD, computes "
                           "the same bits (docs/numerics.md); native: the fastest kernels of this machine (GPU configs)",
                           check=one_of("portable", "native"), neutral="native")
    chance_accuracy_factor: float = option(1.5, "a run whose test accuracy is below this factor times chance is "
                                           "reported as at chance", check=number(minimum=0, exclusive_minimum=True))
    device: str = option("cpu", "cpu, cuda or auto (digits/mnist train on cpu)", check=one_of("cpu", "cuda", "auto"))
    amp: str = option("none", "autocast precision; fp16 (CUDA only) adds a GradScaler", check=one_of("none", "bf16", "fp16"))
    channels_last: bool = option(False, "channels-last memory format", check=boolean())
    compile: bool = option(False, "torch.compile the Powerprop transform theta = phi|phi| (alpha 2) of every layer into "
                           "one call per forward pass, for long runs of big models (CPU ResNet-18: 1.13x -> 1.11x dense); "
                           "eager is faster for small models and short jobs (compile time, seconds, is paid per job)", check=boolean())
    tensorboard: bool = option(False, "also write the training log as TensorBoard event files in each run directory "
                               "(needs the tensorboard extra)", check=boolean(), identity=False)
    gradient_norm_every: int | None = option(None, "log the gradient norm on a fixed validation batch every N steps "
                                             "(and at step 0): gradient_norms.csv", check=integer(minimum=1, nullable=True))
    gradient_norm_steps: tuple[int, ...] = option((), "further steps at which to log the gradient norm",
                                                  check=list_of(integer(minimum=0)))
    gradient_norm_batch_size: int = option(1000, "size of the fixed validation batch of the gradient-norm probe "
                                           "(at most the split)", check=integer(minimum=1))

    def check(self, where: str, cell: CellFacts) -> None:
        if len(set(self.gradient_norm_steps)) != len(self.gradient_norm_steps):
            raise OptionError(f"{where}.gradient_norm_steps: must not repeat a step, got {list(self.gradient_norm_steps)}")


def train_options(raw: dict, where: str = "train") -> TrainOptions:
    """A ``train`` block (a config's or a spec's) as typed settings with every default filled in."""
    return TrainOptions.parse(raw, where)
