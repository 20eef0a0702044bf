"""``timm``: a timm model by ``arch`` (e.g. ``resnet50``), randomly initialised (never downloaded).

``cifar_stem: true`` swaps a ResNet's ImageNet stem (7×7 stride-2 conv + max-pool) for the usual
32×32 one: a 3×3 stride-1 ``conv1`` and no max-pool. timm is imported when a model is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.lazy import LazyModule
from bench_powerprop.models import MODELS, ModelOptions
from bench_powerprop.options import boolean, option, text

nn = LazyModule("torch.nn")
timm = LazyModule("timm")


@dataclass(frozen=True)
class TimmOptions(ModelOptions):
    arch: str = option(None, "timm architecture name (ResNets: resnet18, resnet50, ...)", check=text(pattern=r"resnet\w*"))
    cifar_stem: bool = option(False, "3x3 stride-1 conv1 and no max-pool (32x32 inputs)", check=boolean())


@MODELS.register("timm", options=TimmOptions)
def build_timm(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    model = timm.create_model(model_cfg["arch"], pretrained=False, num_classes=num_classes)
    if model_cfg["cifar_stem"]:
        use_cifar_stem(model)
    return model


def use_cifar_stem(model):
    """3×3 stride-1 ``conv1`` (timm's ResNet init: Kaiming normal, fan-out) and no max-pool."""
    if not (isinstance(getattr(model, "conv1", None), nn.Conv2d) and hasattr(model, "maxpool")):
        raise ValueError("model.cifar_stem: needs a ResNet with a single-conv stem (conv1 + maxpool)")
    old = model.conv1
    model.conv1 = nn.Conv2d(old.in_channels, old.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
