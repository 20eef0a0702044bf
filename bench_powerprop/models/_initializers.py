"""Weight initialisers shared by the model builders."""

from __future__ import annotations

import math

import torch
from torch import nn

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it keeps the
# requested variance after truncation (as Haiku's VarianceScaling does).
TRUNCATED_NORMAL_STD = 0.87962566103423978


def fan_in_truncated_normal_(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Truncated-normal fan-in variance scaling (the Powerprop notebook's initialiser)."""
    fan_in = weight[0].numel()
    std = math.sqrt(scale / fan_in) / TRUNCATED_NORMAL_STD
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
