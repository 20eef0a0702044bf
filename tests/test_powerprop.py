"""Powerprop reparameterisation: gradients, init, identity at α = 1, which parameters are powered."""

import copy

import pytest
import torch
from torch import nn

from bench_powerprop.powerprop import (
    PowerpropConv2d,
    PowerpropLinear,
    _EffectiveWeight,
    effective_weights,
    phi_from_theta,
    powerpropify,
    weight_layers,
)

ALPHAS = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]


def small_net():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gradient_matches_analytic_formula(alpha):
    """dL/dφ = α|φ|^(α−1) · dL/dθ, with dL/dθ from a plain (unconverted) copy of the layer."""
    torch.manual_seed(1)
    layer = nn.Linear(5, 3)
    reference = copy.deepcopy(layer)
    powerpropify(layer, alpha)
    x = torch.randn(8, 5)
    layer(x).pow(2).sum().backward()
    reference(x).pow(2).sum().backward()
    phi = layer.weight.detach()
    expected = alpha * phi.abs().pow(alpha - 1) * reference.weight.grad
    torch.testing.assert_close(layer.weight.grad, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)


@pytest.mark.parametrize("alpha", [2.0, 3.0, 4.5])
def test_gradient_equals_autograd_of_the_definition(alpha):
    phi = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    auto = phi * phi.abs().pow(alpha - 1)
    upstream = torch.randn_like(auto)
    (auto_grad,) = torch.autograd.grad(auto, phi, upstream)
    mine = _EffectiveWeight.apply(phi, alpha, None, None, None)
    (my_grad,) = torch.autograd.grad(mine, phi, upstream)
    torch.testing.assert_close(my_grad, auto_grad)
    assert torch.autograd.gradcheck(lambda p: _EffectiveWeight.apply(p, alpha, None, None, None), (phi,))


def test_gradient_finite_at_zero_for_fractional_alpha():
    phi = torch.tensor([0.0, 0.5, -0.5], requires_grad=True)
    _EffectiveWeight.apply(phi, 1.5, None, None, None).sum().backward()
    assert torch.isfinite(phi.grad).all()
    assert phi.grad[0] == 0


@pytest.mark.parametrize("alpha", ALPHAS)
def test_effective_init_equals_original(alpha):
    net = small_net()
    before = {name: theta.clone() for name, theta in effective_weights(net).items()}
    powerpropify(net, alpha)
    after = effective_weights(net)
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(net[4].weight.detach(), phi_from_theta(before["4.weight"], alpha))


def test_alpha_one_is_bit_identical():
    net = small_net().eval()
    x = torch.randn(3, 1, 8, 8)
    expected = net(x)
    powerpropify(net, 1.0)
    assert torch.equal(net(x), expected)
    assert isinstance(net[0], PowerpropConv2d) and isinstance(net[4], PowerpropLinear)


def test_only_linear_and_conv_weights_are_powered():
    net = small_net()
    bias_before = net[4].bias.detach().clone()
    bn_before = copy.deepcopy(net[1].state_dict())
    powerpropify(net, 3.0)
    assert torch.equal(net[4].bias, bias_before)
    for key, value in net[1].state_dict().items():
        assert torch.equal(value, bn_before[key])
    assert not hasattr(net[1], "alpha")
    assert sum(isinstance(m, (PowerpropConv2d, PowerpropLinear)) for m in net.modules()) == 2


def test_rich_get_richer():
    """With α > 1 the same upstream gradient moves large weights more than small ones."""
    layer = powerpropify(nn.Linear(2, 1, bias=False), 2.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 1.0]]))
    layer(torch.ones(1, 2)).sum().backward()
    assert layer.weight.grad[0, 1] > 5 * layer.weight.grad[0, 0]


def test_state_dict_round_trip_keeps_masks():
    net = powerpropify(small_net(), 2.0)
    net[4].weight_mask = (torch.rand_like(net[4].weight) > 0.5).float()
    fresh = powerpropify(small_net(), 2.0)
    fresh.load_state_dict(net.state_dict())
    assert torch.equal(fresh[4].weight_mask, net[4].weight_mask)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(fresh.eval()(x), net.eval()(x))


def test_rejects_nonpositive_alpha():
    with pytest.raises(ValueError, match="alpha"):
        powerpropify(nn.Linear(2, 2), 0.0)


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_skipping_the_mask_multiply_changes_no_bit(alpha):
    """With masked φ at zero (masks.install), θ and ∂L/∂φ equal those of the explicit θ·m, bitwise."""
    from bench_powerprop import masks

    torch.manual_seed(3)
    fast = powerpropify(nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5)), alpha)
    kept = masks.prune({name: torch.rand_like(theta) for name, theta in effective_weights(fast).items()}, 0.3)
    masks.install(fast, kept)
    slow = copy.deepcopy(fast)
    for layer in slow.modules():
        if hasattr(layer, "zero_outside_mask"):
            layer.zero_outside_mask = False  # force the explicit multiply
    x, y = torch.randn(8, 20), torch.randint(0, 5, (8,))
    for net in (fast, slow):
        nn.functional.cross_entropy(net(x), y).backward()
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.equal(a.grad, b.grad)
    assert all(torch.equal(effective_weights(fast)[n], effective_weights(slow)[n]) for n in kept)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_the_square_power_gradient_is_the_two_pass_formula_bit_for_bit(dtype):
    """``_square_power_grad`` (one addcmul) against g·(2|φ|) in two passes, over every pair of awkward values:
    signed zeros, subnormals, values whose double or product overflows, ±inf and NaNs of both signs."""
    from bench_powerprop.powerprop import _square_power_grad

    info = torch.finfo(dtype)
    awkward = [0.0, -0.0, info.smallest_normal / 4, -info.smallest_normal / 4, info.tiny, 1e-20, 0.25, 3.0, -2.5,
               info.max / 3, -info.max / 1.5, info.max, float("inf"), float("-inf"), float("nan"), -float("nan")]
    noise = torch.randn(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1e3
    values = torch.cat([torch.tensor(awkward, dtype=torch.float64), noise]).to(dtype)
    grad, phi = (column.contiguous() for column in torch.cartesian_prod(values, values).unbind(1))
    expected = grad * (2.0 * phi.abs())
    as_bits = {torch.float32: torch.int32, torch.float64: torch.int64, torch.bfloat16: torch.int16}[dtype]
    assert torch.equal(_square_power_grad(grad, phi.abs()).view(as_bits), expected.view(as_bits))


class TwoHeads(nn.Module):
    """A shared layer called twice, a penalty on its φ, and a head the forward pass may leave out."""

    def __init__(self):
        super().__init__()
        self.shared, self.head, self.unused_head = nn.Linear(6, 6), nn.Linear(6, 3), nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.relu(self.shared(torch.relu(self.shared(x)))))


def _leaf_and_autograd_gradients(net, x):
    from bench_powerprop.powerprop import ThetaLeaves, powerprop_layers

    grads = []
    for leaves in (ThetaLeaves(powerprop_layers(net)), ThetaLeaves([])):
        net.zero_grad(set_to_none=True)
        with leaves:
            (net(x).pow(2).sum() + 1e-3 * net.shared.weight.pow(2).sum()).backward()
        assert all(layer.fused_theta is None for layer in powerprop_layers(net)), "a θ outlived its step"
        grads.append({name: None if p.grad is None else p.grad.clone() for name, p in net.named_parameters()})
    return grads


def test_theta_leaves_give_the_autograd_gradient_bitwise():
    """ThetaLeaves: ∂L/∂φ the same bits as θ inside autograd, with a layer called twice (the second call computes
    its own θ), a penalty on φ, masked φ at zero, a layer at another α (its own path) and a layer never called (no
    gradient, no θ left behind)."""
    from bench_powerprop import masks

    torch.manual_seed(7)
    net = powerpropify(TwoHeads(), 2.0)
    masks.install(net, masks.prune({name: torch.rand_like(theta) for name, theta in effective_weights(net).items()}, 0.5))
    net.head.alpha = 3.0
    leaf, autograd = _leaf_and_autograd_gradients(net, torch.randn(5, 6))
    assert leaf.keys() == autograd.keys()
    for name in leaf:
        assert (leaf[name] is None) == (autograd[name] is None), name
        assert leaf[name] is None or torch.equal(leaf[name], autograd[name]), name
    assert leaf["unused_head.weight"] is None and leaf["shared.weight"] is not None


def test_a_failing_step_leaves_no_theta_and_carries_no_gradient():
    """An error inside the step: every θ is dropped and no leaf's gradient reaches φ (the biases' own do)."""
    from bench_powerprop.powerprop import ThetaLeaves, powerprop_layers

    torch.manual_seed(8)
    net = powerpropify(nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)), 2.0)
    with pytest.raises(RuntimeError, match="a failing step"), ThetaLeaves(powerprop_layers(net)):
        net(torch.randn(5, 6)).pow(2).sum().backward()
        raise RuntimeError("a failing step")
    assert all(layer.fused_theta is None for layer in powerprop_layers(net))
    assert all(layer.weight.grad is None and layer.bias.grad is not None for layer in powerprop_layers(net))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_compiled_transform_matches_the_eager_one(monkeypatch):
    """train.compile: θ = φ|φ| of every layer in one torch.compile call per forward pass gives eager's θ bitwise (the
    logits are the same bits) and ∂L/∂φ to within two roundings; masked φ (zeroed) keep a zero gradient, so the mask
    still holds without the multiply; nothing computed for a forward pass outlives it."""
    from bench_powerprop import masks, powerprop
    from bench_powerprop.powerprop import compile_transforms

    torch.manual_seed(5)
    eager = powerpropify(small_net(), 2.0)
    masks.install(eager, masks.prune({name: torch.rand_like(theta) for name, theta in effective_weights(eager).items()}, 0.3))
    compiled = copy.deepcopy(eager)
    assert compile_transforms(compiled) == 2
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    eager_logits = eager(x)
    nn.functional.cross_entropy(eager_logits, y).backward()
    with monkeypatch.context() as patched:  # the compiled model must not take the eager path
        patched.setattr(powerprop._SquarePowerWeight, "apply", None)
        compiled_logits = compiled(x)
    nn.functional.cross_entropy(compiled_logits, y).backward()
    assert torch.equal(eager_logits, compiled_logits)
    assert all(layer.fused_theta is None for layer in weight_layers(compiled).values())
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=2 * torch.finfo(a.grad.dtype).eps, atol=0), name
        mask = getattr(dict(eager.named_modules())[name.rsplit(".", 1)[0]], "weight_mask", None)
        if name.endswith("weight") and mask is not None:
            assert (b.grad[mask == 0] == 0).all()


@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_a_backward_mask_zeroes_the_gradient_where_it_is_zero_and_keeps_it_elsewhere(alpha):
    from bench_powerprop import masks
    from bench_powerprop.masks import Mask

    torch.manual_seed(0)
    layer = powerpropify(nn.Sequential(nn.Linear(6, 4)), alpha)
    keep = torch.rand(4, 6) < 0.5
    masks.install(layer, Mask({"0.weight": keep}), masks.BACKWARD)
    layer(torch.randn(5, 6)).square().sum().backward()
    grad = layer[0].weight.grad
    assert torch.isfinite(grad).all() and (grad[~keep] == 0).all() and (grad[keep] != 0).all()


def test_model_alpha_is_the_one_exponent_of_the_model():
    from bench_powerprop.powerprop import model_alpha

    assert model_alpha(powerpropify(nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2)), 2.0)) == 2.0
    assert model_alpha(nn.Sequential(nn.Linear(3, 3))) == 1.0
    mixed = nn.Sequential(powerpropify(nn.Sequential(nn.Linear(3, 3)), 2.0), powerpropify(nn.Sequential(nn.Linear(3, 2)), 3.0))
    with pytest.raises(ValueError, match="mixes powerprop exponents"):
        model_alpha(mixed)


def test_the_gradient_is_finite_at_phi_zero_for_alpha_between_1_and_2():
    """∂θ/∂φ = α|φ|^(α−1) is 0 at φ = 0; autograd's product rule on φ·|φ|^(α−1) would form 0·∞ there."""
    layer = powerpropify(nn.Sequential(nn.Linear(3, 2)), 1.5)
    with torch.no_grad():
        layer[0].weight[0, 0] = 0.0
    layer(torch.randn(4, 3)).sum().backward()
    grad = layer[0].weight.grad
    assert torch.isfinite(grad).all() and grad[0, 0] == 0


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_theta_and_its_gradient_are_autograds_definition_bitwise_at_alpha_one_and_from_two(alpha, masked):
    """At α = 1 and α ≥ 2 (no backward mask, no dense-gradient capture) θ and ∂L/∂φ are autograd's own product rule
    of θ = φ·|φ|^(α−1)·m, bit for bit: the rounding the harness's results were made with (the hand-written
    backward computes α|φ|^(α−1)·g, which rounds differently at α ≥ 3)."""
    torch.manual_seed(11)
    layer = powerpropify(nn.Linear(40, 30), alpha)
    mask = (torch.rand(30, 40) < 0.6).float() if masked else None
    layer.weight_mask = mask
    x = torch.randn(16, 40)
    layer(x).pow(2).sum().backward()
    phi = layer.weight.detach().clone().requires_grad_()
    theta = phi * phi.abs().pow(alpha - 1) if alpha != 1 else phi
    theta = theta if mask is None else theta * mask
    nn.functional.linear(x, theta, layer.bias.detach()).pow(2).sum().backward()
    assert torch.equal(layer.weight.grad, phi.grad)
    assert torch.equal(layer.effective_weight(), theta)


def test_reparameterise_keeps_theta_and_rejects_a_nonpositive_alpha():
    from bench_powerprop.powerprop import reparameterise, theta_from_phi

    torch.manual_seed(12)
    net = powerpropify(nn.Sequential(nn.Linear(5, 4)), 2.0)
    before = theta_from_phi(net[0].weight.detach(), 2.0)
    reparameterise(net, 1.0)
    assert net[0].alpha == 1.0
    torch.testing.assert_close(net[0].weight.detach(), before, rtol=1e-6, atol=0)
    for alpha in (0.0, -0.5):
        with pytest.raises(ValueError, match="alpha must be > 0"):
            reparameterise(net, alpha)


def test_unmasked_effective_weights_are_theta_without_the_mask_and_plain_weights_as_they_are():
    from bench_powerprop.powerprop import unmasked_effective_weights

    torch.manual_seed(13)
    plain = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    assert all(torch.equal(theta, layer.weight) for theta, layer in zip(unmasked_effective_weights(plain).values(), plain[::2]))
    net = powerpropify(copy.deepcopy(plain), 2.0)
    net[0].weight_mask = torch.zeros(4, 5)
    phi = net[0].weight.detach()
    assert torch.equal(unmasked_effective_weights(net)["0.weight"], phi * phi.abs())
    one = powerpropify(copy.deepcopy(plain), 1.0)
    before = one[0].weight.detach().clone()
    unmasked_effective_weights(one)["0.weight"].add_(1.0)  # new tensors: editing θ leaves φ as it was
    assert torch.equal(one[0].weight, before)


def test_alpha_one_keeps_every_weight_bit_even_a_negative_zero():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight[0, 0] = -0.0
    bits = layer.weight.detach().clone().view(torch.int32)
    assert torch.equal(phi_from_theta(layer.weight.detach(), 1.0).view(torch.int32), bits)
    assert torch.equal(powerpropify(layer, 1.0).weight.detach().view(torch.int32), bits)


def test_a_mask_loaded_from_a_state_dict_multiplies_theta_and_is_enforced_again():
    """A forward mask that arrives by ``load_state_dict`` (not ``masks.install``, so φ may be non-zero where masked, as
    Top-KAST keeps it): the forward pass computes with θ·m, and ``masks.enforce`` checks the layer again instead of
    skipping it as it did for the mask before."""
    from bench_powerprop import masks

    torch.manual_seed(14)
    source = powerpropify(nn.Sequential(nn.Linear(6, 5)), 2.0)
    mask = (torch.rand(5, 6) < 0.5).float()
    state = {**source.state_dict(), "0.weight_mask": mask}
    fresh = powerpropify(nn.Sequential(nn.Linear(6, 5)), 2.0)
    fresh.load_state_dict(state)
    x, phi = torch.randn(4, 6), source[0].weight.detach()
    assert torch.equal(fresh(x), nn.functional.linear(x, phi * phi.abs() * mask, source[0].bias))

    net = powerpropify(nn.Sequential(nn.Linear(6, 5)), 2.0)
    masks.install(net, masks.Mask({"0.weight": torch.rand(5, 6) < 0.5}))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    masks.enforce(net, optimizer)
    assert net[0].masked_phi_stay_zero  # no optimizer state where masked: later enforces skip the layer
    net.load_state_dict(state)
    masks.enforce(net, optimizer)
    assert torch.equal(net[0].weight.detach(), phi * mask)


def test_the_compile_hooks_hand_each_layer_its_theta_once_and_leave_none_behind(monkeypatch):
    """``compile_transforms``' hooks, with the eager θ function in the compiled one's place (the compiled function's
    own bits: test_the_compiled_transform_matches_the_eager_one): the logits are eager's, and no θ outlives the
    forward pass, not even that of a layer the pass never called."""
    from bench_powerprop import powerprop
    from bench_powerprop.powerprop import compile_transforms, powerprop_layers

    class UnusedHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head, self.unused_head = nn.Linear(6, 6), nn.Linear(6, 3), nn.Linear(6, 3)

        def forward(self, x):
            return self.head(torch.relu(self.body(x)))

    monkeypatch.setitem(powerprop._COMPILED, "square", powerprop._square_powers)
    torch.manual_seed(15)
    eager = powerpropify(UnusedHead(), 2.0)
    hooked = copy.deepcopy(eager)
    assert compile_transforms(hooked) == 3
    x = torch.randn(4, 6)
    expected = eager(x)
    with monkeypatch.context() as patched:  # every θ must come from the hook, none from the layer's own path
        patched.setattr(powerprop._SquarePowerWeight, "apply", None)
        assert torch.equal(hooked(x), expected)
    assert all(layer.fused_theta is None for layer in powerprop_layers(hooked))
