"""Model registry: one file per model family declares its options and builds a plain torch module.

``build_model(model_cfg, input_shape, num_classes)`` builds the model registered under
``model_cfg['name']``; the trainer applies ``powerpropify`` afterwards, so the initial effective
weights equal the usual initialisation. Registration files are torch-free at import (config
validation imports them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop import numerics
from bench_powerprop.options import Options
from bench_powerprop.registry import Registry

MODELS = Registry("model", "bench_powerprop.models")


@dataclass(frozen=True)
class ModelOptions(Options):
    """Base of model options; ``name`` selects the model family and is not an option."""

    RESERVED: ClassVar[tuple[str, ...]] = ("name",)


def resolve_model_config(model_cfg: dict, where: str = "model") -> dict:
    """``model_cfg`` with every option of its model filled in (checked; one-line errors)."""
    return MODELS.resolve(model_cfg, where)


def build_model(model_cfg: dict, input_shape: tuple[int, ...], num_classes: int):
    numerics.install_kernels()  # every process that computes builds its model here
    resolved = resolve_model_config(model_cfg)
    return MODELS.get(resolved["name"])(resolved, input_shape, num_classes)
