"""``dense``: plain training with no masks (Powerprop or not, by α)."""

from bench_powerprop.methods.base import Method, register_method


@register_method
class Dense(Method):
    name = "dense"
