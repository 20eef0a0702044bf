"""Powerpropagation (Schwarz et al., NeurIPS 2021) as an in-place model conversion.

A converted layer stores φ in its ``weight`` parameter and computes with the
effective weight θ = φ·|φ|^(α−1). Masks (for sparse training) are buffers on the
layer: ``weight_mask`` multiplies θ in the forward pass and ``weight_grad_mask``
(when set, e.g. Top-KAST's backward set) replaces it in the backward pass.
Biases and normalisation parameters are never powered. In the trainer's step (one process), θ of the
α = 2 layers is computed outside autograd and ∂L/∂φ formed after the backward pass (``ThetaLeaves``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench_powerprop import numerics

MASK_BUFFERS = ("weight_mask", "weight_grad_mask")


def power_theta(phi: torch.Tensor, alpha: float, magnitude: torch.Tensor | None = None) -> torch.Tensor:
    """θ = φ·|φ|^(α−1), the one definition every path computes θ by (α = 1: φ itself, no copy).

    The paths are strategies around it that differ only in how the gradient reaches φ: autograd's product
    rule (``PowerpropMixin.effective_weight``), a hand-written backward (``_EffectiveWeight``,
    ``_SquarePowerWeight``), θ as a leaf outside autograd (``ThetaLeaves``) and one compiled call for many
    layers (``compile_transforms``). ``magnitude`` is |φ| where a path keeps it for its backward pass.
    """
    if alpha == 1:
        return phi
    magnitude = phi.abs() if magnitude is None else magnitude
    return phi * (magnitude if alpha == 2 else magnitude.pow(alpha - 1))


class _EffectiveWeight(torch.autograd.Function):
    """θ = φ·|φ|^(α−1)·m with gradient α|φ|^(α−1)·m_b·∂L/∂θ.

    Written by hand (rather than left to autograd) so the gradient is finite at
    φ = 0 for 1 < α < 2, where autograd's product rule would form 0·∞.
    """

    @staticmethod
    def forward(ctx, phi, alpha, forward_mask, backward_mask, grad_sink):
        theta = power_theta(phi, alpha)
        if forward_mask is not None:
            theta = theta * forward_mask
        elif theta is phi:
            theta = phi.clone()
        ctx.alpha = alpha
        ctx.grad_sink = grad_sink
        ctx.save_for_backward(phi, forward_mask if backward_mask is None else backward_mask)
        return theta

    @staticmethod
    def backward(ctx, grad_theta):
        phi, mask = ctx.saved_tensors
        if ctx.grad_sink is not None:
            ctx.grad_sink.dense_grad = grad_theta.detach().clone()
        grad_phi = grad_theta
        if ctx.alpha != 1:
            grad_phi = grad_phi * (ctx.alpha * _abs_pow(phi, ctx.alpha - 1))
        if mask is not None:
            grad_phi = grad_phi * mask
        return grad_phi, None, None, None, None


_NEGATIVE_ZEROS: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _negative_zero(like: torch.Tensor) -> torch.Tensor:
    """A 0-dim −0 on ``like``'s device and dtype (``addcmul`` takes no CPU scalar beside CUDA tensors), made once."""
    key = (like.device, like.dtype)
    zero = _NEGATIVE_ZEROS.get(key)
    if zero is None:
        zero = _NEGATIVE_ZEROS[key] = torch.full((), -0.0, dtype=like.dtype, device=like.device)
    return zero


def _square_power_grad(grad_theta: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """∂L/∂φ = 2|φ|·∂L/∂θ in one pass. ``addcmul`` computes (2·|φ|)·g, the operations of g·(2|φ|) in the same order,
    without a pass to double |φ| first; adding −0 changes no value, not even a zero's sign (x + (−0) = x).
    ``tests/test_powerprop.py`` checks the bits against g·(2|φ|) on zeros, subnormals, overflow, ±inf and NaNs."""
    return torch.addcmul(_negative_zero(grad_theta), magnitude, grad_theta, value=2.0)


class _SquarePowerWeight(torch.autograd.Function):
    """θ = φ·|φ| (α = 2) with ∂L/∂φ = 2|φ|·∂L/∂θ, in the fewest passes over the weights.

    Forward: |φ| once (kept for the backward) and one product; backward: one pass (``_square_power_grad``)
    — less than half the memory traffic of autograd's product rule, which re-derives |φ| and forms two
    terms. Bitwise autograd's gradient: 2|φ|·g is exactly g·|φ| + g·φ·sgn φ. Only α = 2, the
    Powerprop setting of every sparse-training experiment: at other α the same function would round
    differently from autograd's product rule and change results the harness has published.
    """

    @staticmethod
    def forward(ctx, phi):
        magnitude = phi.abs()
        ctx.save_for_backward(magnitude)
        return power_theta(phi, 2, magnitude)

    @staticmethod
    def backward(ctx, grad_theta):
        (magnitude,) = ctx.saved_tensors
        return _square_power_grad(grad_theta, magnitude)


def _square_powers(phis: list[torch.Tensor]) -> list[torch.Tensor]:
    return [power_theta(phi, 2) for phi in phis]


_COMPILED: dict[str, object] = {}


def _compiled_square_powers(phis: list[torch.Tensor]) -> list[torch.Tensor]:
    """θ = φ|φ| of several layers in one ``torch.compile``d call: one fused pass per layer forward and one
    backward (AOTAutograd derives it), one call per forward pass of the model. Compiled once per process on
    first use (recompiled only when the set of layers on this path changes, e.g. RigL's dense-gradient steps).
    Not bitwise the eager path in general (fused kernels may contract the backward's multiply-adds):
    ``tests/test_powerprop.py`` measures by how much.
    """
    if "square" not in _COMPILED:
        _COMPILED["square"] = torch.compile(_square_powers)
    return _COMPILED["square"](phis)


def _hand_theta(layer: nn.Module, theta: torch.Tensor | None) -> None:
    """Set a layer's ``fused_theta`` slot, past ``nn.Module.__setattr__`` (its parameter/buffer/module checks cost
    about 1 µs a call on the step's hot path; the slot is never one of those)."""
    object.__setattr__(layer, "fused_theta", theta)


class _FusedSquarePowers:
    """Forward hooks of a model under ``train.compile``: before its forward pass, θ of every layer that takes the
    α = 2 path is computed in one compiled call and handed to the layer; after it, nothing is left behind."""

    def __init__(self, layers: list[nn.Module]):
        self.layers = layers

    def before_forward(self, module, args) -> None:
        ready = [layer for layer in self.layers if layer.takes_square_path()]
        if ready:
            for layer, theta in zip(ready, _compiled_square_powers([layer.weight for layer in ready])):
                _hand_theta(layer, theta)

    def after_forward(self, module, args, output) -> None:
        for layer in self.layers:
            _hand_theta(layer, None)


def compile_transforms(model: nn.Module) -> int:
    """``train.compile``: θ = φ|φ| of every α = 2 Powerprop layer of ``model`` in one compiled call per forward pass
    (layers on another path that step keep theirs); returns the number of Powerprop layers."""
    layers = powerprop_layers(model)
    fused = _FusedSquarePowers(layers)
    model.register_forward_pre_hook(fused.before_forward)
    model.register_forward_hook(fused.after_forward)
    return len(layers)


class ThetaLeaves:
    """θ outside autograd for one forward and backward pass, as a context manager around them (the trainer's step).

    On entry, θ = φ|φ| of every layer on the α = 2 path (``takes_square_path``) is computed without autograd and
    handed to the layer as a leaf tensor; on a clean exit, ∂L/∂φ = 2|φ|·∂L/∂θ is formed from each leaf's gradient
    and added to ``φ.grad``. The graph then has no node of ours per layer: no Python ``backward`` call, which on a
    small network costs as much as the arithmetic (``bench/bench_step_time.py``). The same bits as
    ``_SquarePowerWeight``: the same operations on the same values, and with ``φ.grad`` unset before the backward pass
    (the trainer zeroes it to None) a second contribution to φ (a penalty on φ, a second call of the layer, which
    computes its own θ) is added in one commutative sum, as autograd adds it.

    Only for ``backward()`` in one process: ``torch.autograd.grad`` never reaches φ through a leaf, and DDP reduces
    gradients in φ's own accumulation hooks; the trainer enables it through its strategy, scorers and probes never
    use it. With no layers it does nothing.
    """

    def __init__(self, layers: list[nn.Module]):
        self.layers = layers
        self.pending: list[tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def __enter__(self) -> ThetaLeaves:
        with torch.no_grad():
            for layer in self.layers:
                if layer.takes_square_path():
                    phi = layer._parameters["weight"]
                    magnitude = phi.abs()
                    theta = power_theta(phi, 2, magnitude).requires_grad_()
                    _hand_theta(layer, theta)
                    self.pending.append((layer, phi, theta, magnitude))
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        pending, self.pending = self.pending, []
        for layer, phi, theta, magnitude in pending:
            _hand_theta(layer, None)  # a layer the forward pass did not call (one head of several) keeps no θ
            if error_type is None and theta.grad is not None:
                grad = _square_power_grad(theta.grad, magnitude)
                phi.grad = grad if phi.grad is None else phi.grad + grad


def _abs_pow(x: torch.Tensor, exponent: float) -> torch.Tensor:
    magnitude = x.abs()
    return magnitude if exponent == 1 else magnitude.pow(exponent)


class PowerpropMixin:
    """Shared behaviour of the powerprop layer classes; ``weight`` holds φ."""

    alpha: float = 1.0
    capture_dense_grad: bool = False
    #: masked φ are exactly zero before every forward pass (``masks.install``/``masks.enforce`` keep them so)
    zero_outside_mask: bool = False
    #: ``masks.enforce`` has checked the optimizer state since the forward mask was last installed, and
    #: whether masked φ then stay zero without it (see ``masks.enforce``)
    mask_state_checked: bool = False
    masked_phi_stay_zero: bool = False
    #: θ = φ|φ| computed for this forward pass by ``compile_transforms``' hook (``train.compile``) or by
    #: ``ThetaLeaves`` (the trainer's step), else None
    fused_theta: torch.Tensor | None = None

    def takes_square_path(self) -> bool:
        """Whether ``effective_weight`` is θ = φ|φ| and nothing else: α = 2, no backward mask or dense-gradient
        capture, and masked φ (if any) at zero. Reads the buffers directly: ``nn.Module.__getattr__`` costs ~1 µs a
        buffer on the step's hot path."""
        buffers = self._buffers
        return self.alpha == 2 and not self.capture_dense_grad and buffers.get("weight_grad_mask") is None \
            and (self.zero_outside_mask or buffers.get("weight_mask") is None)

    def effective_weight(self) -> torch.Tensor:
        fused = self.fused_theta
        if fused is not None:  # this pass's θ, from compile_transforms' hook or ThetaLeaves (it took the path below)
            _hand_theta(self, None)  # used once: a second call of this layer computes its own
            return fused
        if self.takes_square_path():
            # With masked φ at zero, θ and ∂θ/∂φ = 2|φ| are already zero there: the mask multiply (a pass
            # forward and one backward) would change no bit.
            return _SquarePowerWeight.apply(self._parameters["weight"])
        buffers = self._buffers
        mask, grad_mask, phi = buffers.get("weight_mask"), buffers.get("weight_grad_mask"), self._parameters["weight"]
        if grad_mask is None and not self.capture_dense_grad and (self.alpha == 1 or self.alpha >= 2):
            # built-in autograd ops: exact here, the product rule has no 0·∞ at φ = 0 for α ≥ 2
            theta = power_theta(phi, self.alpha)
            return theta if mask is None or (self.alpha != 1 and self.zero_outside_mask) else theta * mask
        sink = self if self.capture_dense_grad else None
        return _EffectiveWeight.apply(phi, self.alpha, mask, grad_mask, sink)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in MASK_BUFFERS:
            key = prefix + name
            if key in state_dict:
                self._buffers[name] = state_dict[key].detach().clone().to(self.weight.device)
                self.mask_state_checked = self.masked_phi_stay_zero = False  # a new mask: masks.enforce checks again
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:g}"


class PowerpropLinear(PowerpropMixin, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)


class PowerpropConv2d(PowerpropMixin, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.effective_weight(), self.bias)


_POWERPROP_CLASS = {nn.Linear: PowerpropLinear, nn.Conv2d: PowerpropConv2d}
_POWERPROP_CLASS.update({cls: cls for cls in (PowerpropLinear, PowerpropConv2d)})


def _convertible(module: nn.Module) -> bool:
    return type(module) in _POWERPROP_CLASS


def _check_supported(name: str, module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d)) and not _convertible(module):
        raise TypeError(
            f"powerpropify: layer {name!r} is a {type(module).__name__}, a subclass of "
            f"nn.Linear/nn.Conv2d with its own forward; only plain nn.Linear and nn.Conv2d are supported"
        )


def phi_from_theta(theta: torch.Tensor, alpha: float) -> torch.Tensor:
    """φ = sign(θ)·|θ|^(1/α): the stored value whose effective weight is θ."""
    if alpha == 1:
        return theta.clone()
    return torch.sign(theta) * numerics.power(theta.abs(), 1.0 / alpha)


def theta_from_phi(phi: torch.Tensor, alpha: float) -> torch.Tensor:
    return phi.clone() if alpha == 1 else power_theta(phi, alpha)


def convert_layer(module: nn.Module, alpha: float) -> nn.Module:
    """Turn one plain Linear/Conv2d into its powerprop class, keeping θ unchanged."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    theta = effective_weight_of(module).detach()
    if not isinstance(module, PowerpropMixin):
        module.__class__ = _POWERPROP_CLASS[type(module)]
        for name in MASK_BUFFERS:
            module.register_buffer(name, None)
    module.alpha = float(alpha)
    with torch.no_grad():
        module.weight.copy_(phi_from_theta(theta, alpha))
    return module


def powerpropify(model: nn.Module, alpha: float) -> nn.Module:
    """Convert every nn.Linear/nn.Conv2d weight of ``model`` in place; returns the model.

    θ is preserved: φ = sign(θ₀)|θ₀|^(1/α). With α = 1 the outputs are bit-identical.
    """
    for name, module in model.named_modules():
        _check_supported(name, module)
        if _convertible(module):
            convert_layer(module, alpha)
    return model


@torch.no_grad()
def reparameterise(model: nn.Module, alpha: float) -> None:
    """Give every powerprop layer exponent ``alpha`` while keeping its θ: φ ← sign(θ)|θ|^(1/α).

    Computed in float64 and rounded once to the weight's dtype, so θ recomputed from the new φ
    equals the old θ to within float rounding (a few ulp; bitwise equality is impossible in
    general: for α > 1 neighbouring φ values map to θ values more than one ulp apart).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    for layer in model.modules():
        if isinstance(layer, PowerpropMixin):
            theta = theta_from_phi(layer.weight.double(), layer.alpha)
            layer.weight.copy_(phi_from_theta(theta, alpha).to(layer.weight.dtype))
            layer.alpha = float(alpha)


def layer_alphas(model: nn.Module) -> dict[str, float]:
    """``{layer name: α}`` of the powerprop layers; saved beside φ where α may have changed in training."""
    return {name: layer.alpha for name, layer in weight_layers(model).items() if isinstance(layer, PowerpropMixin)}


def restore_layer_alphas(model: nn.Module, alphas: dict[str, float]) -> None:
    """Set the layers' α from ``layer_alphas`` (φ untouched: it was saved for these exponents)."""
    layers = weight_layers(model)
    for name, alpha in alphas.items():
        layers[name].alpha = float(alpha)


def powerprop_layers(model: nn.Module) -> list[PowerpropMixin]:
    """The model's Powerprop layers, in module order."""
    return [module for module in model.modules() if isinstance(module, PowerpropMixin)]


def effective_weight_of(module: nn.Module) -> torch.Tensor:
    if isinstance(module, PowerpropMixin):
        with torch.no_grad():
            theta = theta_from_phi(module.weight, module.alpha)
            return theta if module.weight_mask is None else theta * module.weight_mask
    return module.weight


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Ordered ``{'<module>.weight': module}`` for every Linear/Conv2d layer (the prunable ones)."""
    return {
        f"{name}.weight" if name else "weight": module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
    }


def effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{param_name: θ}`` (detached, masks applied) for every Linear/Conv2d weight."""
    return {name: effective_weight_of(module).detach() for name, module in weight_layers(model).items()}


def unmasked_effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{param_name: θ}`` (detached, new tensors) from the stored φ of every Linear/Conv2d weight, ignoring any
    installed mask (masked φ is zero anyway, except under Top-KAST, which keeps φ dense)."""
    return {name: theta_from_phi(layer.weight.detach(), getattr(layer, "alpha", 1.0)) for name, layer in weight_layers(model).items()}


def capture_dense_gradients(model: nn.Module, enabled: bool = True) -> None:
    """Record the dense ∂L/∂θ of every layer in the next backward pass (RigL's grow criterion)."""
    for layer in weight_layers(model).values():
        if isinstance(layer, PowerpropMixin):
            layer.capture_dense_grad = enabled
            if not enabled:
                layer.dense_grad = None


def captured_dense_gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{name: dense ∂L/∂θ}`` recorded by the last backward pass with capture on."""
    layers = weight_layers(model).items()
    return {name: layer.dense_grad for name, layer in layers if getattr(layer, "dense_grad", None) is not None}


def model_alpha(model: nn.Module) -> float:
    alphas = {m.alpha for m in model.modules() if isinstance(m, PowerpropMixin)}
    if len(alphas) > 1:
        raise ValueError(f"model mixes powerprop exponents {sorted(alphas)}")
    return alphas.pop() if alphas else 1.0
