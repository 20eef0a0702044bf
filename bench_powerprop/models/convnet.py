"""``convnet``: a plain CNN: 2-D convolutions (ReLU, optional 2×2 max-pool after each), flatten, dense ReLU
layers, a dense output layer; no batch norm, no dropout.

Written for the student reproduction report's CIFAR-10 experiment (Jain, Raj, Asgaonkar 2022,
"Powerpropagation", the CIFAR-10 CNN: "five-layer", 0.58 test accuracy with Powerprop vs 0.50 at α = 1).
The report's exact layer sizes, padding and pooling are not known to this harness, so every one of them is
an option here. The defaults are **ours, not the report's**: the five-weight-layer CIFAR-10 CNN of
TensorFlow's CNN tutorial (tensorflow.org/tutorials/images/cnn; github.com/tensorflow/docs
``site/en/tutorials/images/cnn.ipynb``): conv 32@3×3 → pool → conv 64@3×3 → pool → conv 64@3×3 →
dense 64 → dense classes, valid padding (122,570 parameters at 32×32×3 input and 10 classes, as the
tutorial's model summary prints).

Inputs: images (channels, height, width), or flat square one-channel pixel vectors (784 → 1×28×28, as
``lenet5``). Initialised as every model here: truncated-normal fan-in variance scaling (the Powerprop
notebook's initialiser), zero biases (the tutorial uses Keras's Glorot-uniform default).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from bench_powerprop.models import MODELS, ModelOptions
from bench_powerprop.options import OptionError, boolean, integer, list_of, one_of, option


@dataclass(frozen=True)
class ConvnetOptions(ModelOptions):
    channels: tuple[int, ...] = option((32, 64, 64), "output channels of each convolution",
                                       check=list_of(integer(minimum=1), min_items=1))
    pool: tuple[bool, ...] = option((True, True, False), "2x2 max-pool after each convolution (one flag per convolution)",
                                    check=list_of(boolean(), min_items=1))
    kernel_size: int = option(3, "side of every convolution kernel", check=integer(minimum=1))
    padding: str = option("valid", "convolution padding: valid (none) or same (keeps the size)", check=one_of("valid", "same"))
    hidden: tuple[int, ...] = option((64,), "widths of the dense hidden layers", check=list_of(integer(minimum=1)))

    def check(self, where, cell):
        if len(self.pool) != len(self.channels):
            raise OptionError(f"{where}.pool: needs one flag per convolution ({len(self.channels)}), "
                              f"got {len(self.pool)}")


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(channels, height, width) of the model's input; flat inputs are square one-channel images."""
    if len(input_shape) == 3:
        return input_shape
    side = math.isqrt(math.prod(input_shape))
    if side * side != math.prod(input_shape):
        raise ValueError(f"model convnet: needs images or square pixel vectors, got input shape {input_shape}")
    return (1, side, side)


def feature_side(side: int, model_cfg: dict) -> int:
    """The side of the last convolution's feature map (one-line error when the input is too small)."""
    for i, pooled in enumerate(model_cfg["pool"]):
        side -= 0 if model_cfg["padding"] == "same" else model_cfg["kernel_size"] - 1
        side = side // 2 if pooled else side
        if side < 1:
            raise ValueError(f"model convnet: the input is too small for convolution {i + 1} "
                             f"(kernel {model_cfg['kernel_size']}, padding {model_cfg['padding']})")
    return side


@MODELS.register("convnet", options=ConvnetOptions)
def build_convnet(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    from torch import nn

    from bench_powerprop.models._initializers import fan_in_truncated_normal_

    in_channels, height, width = image_shape(tuple(input_shape))
    layers: list[nn.Module] = [] if len(input_shape) == 3 else [nn.Unflatten(1, (in_channels, height, width))]
    for out_channels, pooled in zip(model_cfg["channels"], model_cfg["pool"], strict=True):
        layers += [nn.Conv2d(in_channels, out_channels, model_cfg["kernel_size"], padding=model_cfg["padding"]), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if pooled else []
        in_channels = out_channels
    widths = [in_channels * feature_side(height, model_cfg) * feature_side(width, model_cfg), *model_cfg["hidden"]]
    layers.append(nn.Flatten())
    for fan_in, fan_out in itertools.pairwise(widths):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], num_classes))
    for layer in layers:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            fan_in_truncated_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)
