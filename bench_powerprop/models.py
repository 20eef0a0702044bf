"""Model registry: ``build_model(model_cfg, input_shape, num_classes)`` by the config's ``name``.

Models come back as plain torch modules; the trainer applies ``powerpropify`` after
building so the initial effective weights equal the usual initialisation.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {}

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it keeps the
# requested variance after truncation (as Haiku's VarianceScaling does).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def register_model(name: str):
    def decorator(builder):
        MODEL_BUILDERS[name] = builder
        return builder

    return decorator


def build_model(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if model_cfg["name"] not in MODEL_BUILDERS:
        raise KeyError(f"unknown model {model_cfg['name']!r}; known: {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[model_cfg["name"]](model_cfg, input_shape, num_classes)


def fan_in_truncated_normal_(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Truncated-normal fan-in variance scaling (the Powerprop notebook's initialiser)."""
    fan_in = weight[0].numel()
    std = math.sqrt(scale / fan_in) / TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


@register_model("mlp")
def build_mlp(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Fully connected ReLU net, e.g. LeNet-300-100 with ``hidden: [300, 100]``."""
    widths = [math.prod(input_shape), *model_cfg.get("hidden", [300, 100]), num_classes]
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        linear = nn.Linear(fan_in, fan_out)
        fan_in_truncated_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@register_model("timm")
def build_timm(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A timm model by ``arch`` (e.g. ``resnet50``), randomly initialised (never downloaded).

    ``cifar_stem: true`` swaps a ResNet's ImageNet stem (7×7 stride-2 conv + max-pool) for the
    usual 32×32 one: a 3×3 stride-1 ``conv1`` and no max-pool. timm is imported here, lazily.
    """
    import timm

    model = timm.create_model(model_cfg["arch"], pretrained=False, num_classes=num_classes)
    if model_cfg.get("cifar_stem", False):
        use_cifar_stem(model)
    return model


def use_cifar_stem(model: nn.Module) -> nn.Module:
    """3×3 stride-1 ``conv1`` (timm's ResNet init: Kaiming normal, fan-out) and no max-pool."""
    if not (isinstance(getattr(model, "conv1", None), nn.Conv2d) and hasattr(model, "maxpool")):
        raise ValueError("model.cifar_stem: needs a ResNet with a single-conv stem (conv1 + maxpool)")
    old = model.conv1
    model.conv1 = nn.Conv2d(old.in_channels, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
