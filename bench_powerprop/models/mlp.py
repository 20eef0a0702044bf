"""``mlp``: a fully connected ReLU network, e.g. LeNet-300-100 with ``hidden: [300, 100]``.

Initialised as the official Powerprop notebook (google-deepmind/deepmind-research
``powerpropagation/powerpropagation.ipynb``): truncated-normal fan-in variance scaling, zero biases.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.models import MODELS, ModelOptions
from bench_powerprop.options import integer, list_of, option

nn = LazyModule("torch.nn")
initializers = LazyModule("bench_powerprop.models._initializers")


@dataclass(frozen=True)
class MlpOptions(ModelOptions):
    hidden: tuple[int, ...] = option((300, 100), "widths of the hidden layers", check=list_of(integer(minimum=1), min_items=1))


@MODELS.register("mlp", options=MlpOptions)
def build_mlp(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    widths = [math.prod(input_shape), *model_cfg["hidden"], num_classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        linear = nn.Linear(fan_in, fan_out)
        initializers.fan_in_truncated_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
