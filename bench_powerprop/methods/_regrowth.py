"""Values given to weights that (re)enter a mask, and their fresh optimizer state.

The initialisation matters under Powerprop: ∂L/∂φ = α|φ|^(α−1)·∂L/∂θ is 0 at φ = 0 for α > 1, so a
weight regrown at exactly zero never moves again.
"""

from __future__ import annotations

from bench_powerprop.lazy import LazyModule, no_grad

torch = LazyModule("torch")
powerprop = LazyModule("bench_powerprop.powerprop")

GROW_INITS = ("zeros", "initial", "random")


def default_grow_init(alpha: float) -> str:
    """``zeros`` (RigL/SET's published choice) only where it is not a fixed point: α = 1."""
    return "zeros" if alpha == 1 else "initial"


class RegrowthInit:
    """Values of φ given to newly grown weights.

    ``zeros``: φ = 0 (published default; for α > 1 such a weight never moves again).
    ``initial``: the weight's own initial value, φ = sign(θ₀)|θ₀|^(1/α).
    ``random``: a fresh draw from the layer's initial distribution, taken as the empirical
    distribution of that layer's θ₀ (so it follows whatever initialiser built the model), mapped to φ.
    θ₀ is read in ``setup`` from the fresh model, so resuming rebuilds it identically.
    """

    def __init__(self, mode: str, model):
        self.mode = mode
        self.theta0 = {} if mode == "zeros" else powerprop.unmasked_effective_weights(model)

    def checksum(self) -> float:
        return float(sum(theta.double().abs().sum() for theta in self.theta0.values()))

    @no_grad
    def phi_values(self, name: str, layer, where, generator):
        count = int(where.sum())
        alpha = getattr(layer, "alpha", 1.0)
        if self.mode == "zeros" or count == 0:
            return torch.zeros(count, dtype=layer.weight.dtype, device=layer.weight.device)
        theta0 = self.theta0[name]
        if self.mode == "initial":
            theta = theta0[where]
        else:
            theta = theta0.reshape(-1)[torch.randint(theta0.numel(), (count,), generator=generator).to(theta0.device)]
        return powerprop.phi_from_theta(theta, alpha).to(layer.weight.dtype)


@no_grad
def reset_optimizer_state(optimizer, parameter, where) -> None:
    """Fresh optimizer state at ``where`` (bool, shape of ``parameter``): zero every per-entry state tensor.

    Covers SGD's momentum buffer and Adam's first/second moments (and max second moment).
    Scalar state such as Adam's step count is shared by the tensor and left alone.
    """
    state = optimizer.state.get(parameter)
    if not state:
        return
    for value in state.values():
        if torch.is_tensor(value) and value.shape == parameter.shape:
            value[where] = 0
