"""``lenet5``: LeNet-5 as in Evci et al.'s gradient-flow code (google-research/rigl
``rigl/rigl_tf2/networks.py::lenet5``, commit d39fc7d): conv 6@5×5 → ReLU → max-pool 2 → conv 16@5×5 →
ReLU → max-pool 2 → dense 120 → ReLU → dense 84 → ReLU → dense classes, valid padding, no batch norm.

The datasets here give flat pixel vectors; the first layer reshapes them into a square one-channel
image (784 → 28×28), so the model needs images of at least 16×16 (digits' 8×8 is too small).
Initialised as every model here: truncated-normal fan-in variance scaling (the Powerprop
notebook's initialiser), zero biases. Deviation: the reference uses Keras's default Glorot-uniform
initialiser; the harness keeps one initialiser for every model so that the dense-init baseline of the
sparse-initialisation comparison is the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.models import MODELS, ModelOptions
from bench_powerprop.options import integer, list_of, option

nn = LazyModule("torch.nn")
initializers = LazyModule("bench_powerprop.models._initializers")

MIN_SIDE = 16


@dataclass(frozen=True)
class Lenet5Options(ModelOptions):
    channels: tuple[int, ...] = option((6, 16), "channels of the two convolutions", check=list_of(integer(minimum=1), 2, 2))
    hidden: tuple[int, ...] = option((120, 84), "widths of the two dense hidden layers", check=list_of(integer(minimum=1), 2, 2))


@MODELS.register("lenet5", options=Lenet5Options)
def build_lenet5(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    side = math.isqrt(math.prod(input_shape))
    if side * side != math.prod(input_shape) or side < MIN_SIDE:
        raise ValueError(f"model lenet5: needs square images of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                         f"got {math.prod(input_shape)} features")
    first, second = model_cfg["channels"]
    flat = second * (((side - 4) // 2 - 4) // 2) ** 2
    layers = [nn.Unflatten(1, (1, side, side)),
              nn.Conv2d(1, first, 5), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(first, second, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
              nn.Linear(flat, model_cfg["hidden"][0]), nn.ReLU(),
              nn.Linear(model_cfg["hidden"][0], model_cfg["hidden"][1]), nn.ReLU(),
              nn.Linear(model_cfg["hidden"][1], num_classes)]
    for layer in layers:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            initializers.fan_in_truncated_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)
