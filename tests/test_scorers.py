"""Every scorer against an independent computation of its formula, under α = 1 and α > 1.

The independent computations write the network out by hand (θ = φ|φ|^(α−1), h = relu(θ·x + b)) and
differentiate with respect to θ, or use the closed form (SynFlow); the scorers go through the
model. Masks from every scorer's ``select`` keep exact counts in both scopes.
"""

import copy
import itertools

import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.masks import Mask, kept_count
from bench_powerprop.powerprop import powerpropify, weight_layers
from bench_powerprop.scoring import SCORERS, ScoringInputs, score, scorer
from bench_powerprop.scoring import force as force_module
from bench_powerprop.scoring import synflow as synflow_module
from bench_powerprop.scoring.base import SCOPES

ALPHAS = [1.0, 2.5]
SIZES = (6, 5, 4, 3)


def small_mlp(alpha, seed=0, biases=True):
    torch.manual_seed(seed)
    layers = [nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]), nn.ReLU(), nn.Linear(SIZES[2], SIZES[3])]
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for layer in weight_layers(model).values():
            layer.bias.copy_(0.1 * torch.randn_like(layer.bias) if biases else torch.zeros_like(layer.bias))
    return powerpropify(model, alpha)


def batches(count=2, n=7, seed=3):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, SIZES[0], generator=generator), torch.randint(0, SIZES[-1], (n,), generator=generator)) for _ in range(count)]


def inputs_for(data, mask=None):
    return ScoringInputs(batches=data, loss_fn=nn.functional.cross_entropy, generator=torch.Generator().manual_seed(0), mask=mask)


def thetas_by_hand(model):
    """θ = φ|φ|^(α−1) written out, and the biases, per layer in order."""
    layers = list(weight_layers(model).values())
    return ([(layer.weight.detach() * layer.weight.detach().abs() ** (layer.alpha - 1)).clone() for layer in layers],
            [layer.bias.detach().clone() for layer in layers])


def forward_by_hand(thetas, biases, x):
    for i, (theta, bias) in enumerate(zip(thetas, biases)):
        x = x @ theta.T + bias
        if i < len(thetas) - 1:
            x = torch.relu(x)
    return x


def loss_by_hand(thetas, biases, data, temperature=1.0):
    return sum(nn.functional.cross_entropy(forward_by_hand(thetas, biases, x) / temperature, y) for x, y in data)


def as_list(scores, model):
    return [scores[name] for name in weight_layers(model)]


@pytest.mark.parametrize("alpha", ALPHAS)
def test_snip_is_abs_gradient_times_theta(alpha):
    model, data = small_mlp(alpha), batches()
    thetas, biases = thetas_by_hand(model)
    variables = [theta.clone().requires_grad_(True) for theta in thetas]
    grads = torch.autograd.grad(loss_by_hand(variables, biases, data), variables)
    expected = [(grad * theta).abs() for grad, theta in zip(grads, thetas)]
    for got, want in zip(as_list(score("snip", model, inputs_for(data)), model), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_grasp_is_theta_times_hessian_gradient_product(alpha):
    """θ ⊙ Hg with the Hessian built explicitly (torch.autograd.functional.hessian) on the flattened θ."""
    model, data = small_mlp(alpha), batches()
    thetas, biases = thetas_by_hand(model)
    shapes, sizes = [theta.shape for theta in thetas], [theta.numel() for theta in thetas]
    temperature = 200.0

    def loss_of(flat):
        parts = [part.view(shape) for part, shape in zip(torch.split(flat, sizes), shapes)]
        return loss_by_hand(parts, biases, data, temperature)

    flat = torch.cat([theta.reshape(-1) for theta in thetas]).double()
    biases = [bias.double() for bias in biases]
    data = [(x.double(), y) for x, y in data]
    gradient = torch.autograd.functional.jacobian(loss_of, flat)
    hessian = torch.autograd.functional.hessian(loss_of, flat)
    expected = torch.split(flat * (hessian @ gradient), sizes)
    got = as_list(score("grasp", model, inputs_for(batches()), temperature=temperature), model)
    for got_layer, want in zip(got, expected):
        torch.testing.assert_close(got_layer.double().reshape(-1), want, rtol=1e-3, atol=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_synflow_single_round_is_the_closed_form(alpha):
    """With zero biases R = 1ᵀ|W3||W2||W1|1, so ∂R/∂|W_l|[i, j] = (1ᵀ∏_{k>l}|W_k|)_i (∏_{k<l}|W_k|1)_j."""
    model = small_mlp(alpha, biases=False)
    weights = [theta.double().abs() for theta in thetas_by_hand(model)[0]]
    expected = []
    for index, weight in enumerate(weights):
        left = torch.ones(1, SIZES[-1], dtype=torch.float64)
        for later in reversed(weights[index + 1:]):
            left = left @ later
        right = torch.ones(SIZES[0], 1, dtype=torch.float64)
        for earlier in weights[:index]:
            right = earlier @ right
        expected.append(left.T @ right.T * weight)
    for got, want in zip(as_list(score("synflow", model), model), expected):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_force_single_round_takes_the_gradient_at_the_pruned_weights(alpha):
    model, data = small_mlp(alpha), batches()
    thetas, biases = thetas_by_hand(model)
    mask = masks.prune(score("magnitude", model), 0.5)
    pruned = [(theta * mask[name]).requires_grad_(True) for theta, name in zip(thetas, weight_layers(model))]
    grads = torch.autograd.grad(loss_by_hand(pruned, biases, data) / len(data), pruned)
    expected = [(grad * theta).abs() for grad, theta in zip(grads, thetas)]  # dense θ₀: pruned weights can return
    for got, want in zip(as_list(score("force", model, inputs_for(data, mask)), model), expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_scores_are_invariant_to_the_parameterisation():
    """The same θ stored as φ for α = 1 and α = 3 scores the same (saliencies are taken on θ)."""
    plain, powered = small_mlp(1.0), small_mlp(1.0)
    powerpropify(powered, 3.0)
    data = batches()
    for name in ("snip", "grasp", "force"):
        for a, b in zip(as_list(score(name, plain, inputs_for(data)), plain), as_list(score(name, powered, inputs_for(data)), powered)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-8)
    for a, b in zip(as_list(score("synflow", plain), plain), as_list(score("synflow", powered), powered)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-8)


def wide_mlp(alpha):
    torch.manual_seed(1)
    return powerpropify(nn.Sequential(nn.Linear(16, 40), nn.ReLU(), nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 4)), alpha)


def wide_batches():
    generator = torch.Generator().manual_seed(5)
    return [(torch.randn(32, 16, generator=generator), torch.randint(0, 4, (32,), generator=generator))]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("name", SCORERS.names())
def test_every_scorer_selects_exact_counts(name, scope):
    model, keep, factor = wide_mlp(2.0), 0.1, (1.0 if scope == "global" else 2.0)
    options = {"rounds": 5} if "rounds" in SCORERS.options(name).__dataclass_fields__ else {}
    mask = scorer(name, options).select(model, inputs_for(wide_batches()), keep, scope, factor)
    counts, layers = mask.layer_counts(), list(weight_layers(model).items())
    if scope == "global":
        assert mask.count() == kept_count(sum(layer.weight.numel() for _, layer in layers), keep)
        return
    output_name, output = layers[-1]
    assert counts[output_name] == kept_count(output.weight.numel(), min(1.0, factor * keep))
    hidden = {name: layer.weight.numel() for name, layer in layers[:-1]}
    if scope == "layerwise":
        assert all(counts[layer] == kept_count(numel, keep) for layer, numel in hidden.items())
    else:
        assert sum(counts[layer] for layer in hidden) == kept_count(sum(hidden.values()), keep)


SYNAPTIC_FLOW_COUNT = lambda n, d: n - int((1.0 - d) * n)  # noqa: E731  Pruners/pruners.py::_global_mask
FORCE_COUNT = lambda n, d: int(n * d)  # noqa: E731  pruning/pruning_algos.py::get_mask


@pytest.mark.parametrize("name, keep, reference_count, expected, exact", [
    # N = 16·40 + 40·30 + 30·4 = 1960. d = 0.0711: d·N = 139.356, Synaptic-Flow prunes int(1820.644) = 1820 → 140.
    ("snip", 0.0711, SYNAPTIC_FLOW_COUNT, 140, 139), ("synflow", 0.0711, SYNAPTIC_FLOW_COUNT, 140, 139),
    # d = 0.0713: d·N = 139.748, FORCE keeps int(139.748) = 139, the default round(139.748) = 140.
    ("force", 0.0713, FORCE_COUNT, 139, 140)])
def test_count_reference_keeps_the_reference_codes_count(name, keep, reference_count, expected, exact):
    model = wide_mlp(1.0)
    options = {"rounds": 3} if name in ("synflow", "force") else {}
    total = sum(layer.weight.numel() for layer in weight_layers(model).values())
    assert total == 1960 and reference_count(total, keep) == expected
    chosen = scorer(name, options)
    assert chosen.select(model, inputs_for(wide_batches()), keep, "global", count="reference").count() == expected
    assert chosen.select(model, inputs_for(wide_batches()), keep, "global").count() == exact


def batch_norm_mlp():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 4))
    with torch.no_grad():  # running statistics far from any batch's, so train and eval mode score differently,
        # below the pre-activations' range, so in eval mode most ReLUs pass (eval scores are not all zero)
        model[1].running_mean.copy_(torch.linspace(-1.5, -0.5, 12))
        model[1].running_var.fill_(9.0)
    return model


def gradient_by_autograd(model, data, train: bool, temperature=1.0):
    """∂L/∂W of every Linear weight, summed over the batches, on a copy in train or eval mode (plain autograd)."""
    copy_ = copy.deepcopy(model).train(train)
    weights = [m.weight for m in copy_.modules() if isinstance(m, nn.Linear)]
    loss = sum(nn.functional.cross_entropy(copy_(x) / temperature, y) for x, y in data)
    return [w.detach() for w in weights], torch.autograd.grad(loss, weights)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_force_scores_in_train_mode_by_default_as_its_reference(mode):
    model, data = batch_norm_mlp(), wide_batches()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    options = {"rounds": 1} if mode == "train" else {"rounds": 1, "mode": "eval"}
    got = as_list(scorer("force", options).score(model, inputs_for(data)), model)
    weights, grads = gradient_by_autograd(model, data, train=mode == "train")
    for got_layer, weight, grad in zip(got, weights, grads):
        torch.testing.assert_close(got_layer, (weight * grad / len(data)).abs(), rtol=1e-5, atol=1e-7)
        assert (got_layer != 0).float().mean() > 0.5  # a live network: most weights score
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())  # running stats restored
    assert model.training


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_grasp_scores_in_train_mode_by_default_as_its_reference(mode):
    """θ ⊙ Hg with Hg by a second autograd pass through the gradient, on a copy in the given mode."""
    model, data = batch_norm_mlp(), wide_batches()
    model.eval()  # the scorer sets the mode itself and restores this one
    copy_ = copy.deepcopy(model).train(mode == "train")
    weights = [m.weight for m in copy_.modules() if isinstance(m, nn.Linear)]
    loss = sum(nn.functional.cross_entropy(copy_(x) / 200.0, y) for x, y in data)
    gradient = torch.autograd.grad(loss, weights, create_graph=True)
    stopped = [g.detach() for g in gradient]
    hg = torch.autograd.grad(sum((g * s).sum() for g, s in zip(gradient, stopped)), weights)
    got = as_list(scorer("grasp", {} if mode == "train" else {"mode": "eval"}).score(model, inputs_for(data)), model)
    for got_layer, weight, product in zip(got, weights, hg):
        torch.testing.assert_close(got_layer, weight.detach() * product, rtol=1e-4, atol=1e-9)
        assert (got_layer != 0).float().mean() > 0.5  # a live network: most weights score
    assert not model.training


def test_train_and_eval_mode_scores_differ_with_batch_norm():
    model, data = batch_norm_mlp(), wide_batches()
    train = scorer("force", {"rounds": 1}).score(model, inputs_for(data))
    evaluated = scorer("force", {"rounds": 1, "mode": "eval"}).score(model, inputs_for(data))
    assert not all(torch.allclose(train[name], evaluated[name]) for name in train)


def test_synflow_rounds_are_nested_and_follow_the_exponential_schedule():
    model = wide_mlp(1.0)
    start = masks.prune(score("random", model, inputs_for(None)), 0.5, "global")
    one_round = scorer("synflow", {"rounds": 1}).select(model, inputs_for(None, start), 0.2, "global")
    assert one_round.issubset(start)
    with_rounds = scorer("synflow", {"rounds": 4}).select(model, inputs_for(None, start), 0.2, "global")
    assert with_rounds.issubset(start) and with_rounds.count() == one_round.count()


@pytest.mark.parametrize("name", ["synflow", "force"])
def test_iterative_rounds_keep_the_exponential_schedule_keep_to_the_r_over_r(name, monkeypatch):
    """Round r of R keeps exactly round(keep^(r/R)·N) weights (global scope); SynFlow's rounds are nested (FORCE
    rescores every weight each round: a weight may come back)."""
    model, keep, rounds = wide_mlp(1.0), 0.05, 4
    total = sum(layer.weight.numel() for layer in weight_layers(model).values())
    kept_per_round, original = [], masks.prune
    def recorded(*args, **kwargs):
        kept_per_round.append(original(*args, **kwargs))
        return kept_per_round[-1]

    # the scorers reach masks through lazy proxies that keep what they looked up: patched there too
    for where in (masks, synflow_module.masks, force_module.masks):
        monkeypatch.setattr(where, "prune", recorded, raising=False)
    final = scorer(name, {"rounds": rounds}).select(model, inputs_for(wide_batches()), keep, "global")
    assert [m.count() for m in kept_per_round] == [kept_count(total, keep ** (r / rounds)) for r in range(1, rounds + 1)]
    assert name != "synflow" or all(later.issubset(earlier) for earlier, later in itertools.pairwise(kept_per_round))
    assert final == kept_per_round[-1]


def test_iterative_synflow_avoids_layer_collapse_where_one_shot_magnitude_does_not():
    """Tanaka et al.'s claim on a toy: a layer of tiny weights is emptied by global magnitude pruning,
    never by iterative SynFlow (every layer keeps a path)."""
    model = wide_mlp(1.0)
    with torch.no_grad():
        weight_layers(model)["2.weight"].weight.mul_(1e-3)
    keep = 0.1  # (at 0.05, 98 weights, fewer than the output layer's 120, SynFlow gives them all to the output layer)
    magnitude = masks.prune(score("magnitude", model), keep, "global")
    synflow = scorer("synflow", {"rounds": 20}).select(model, inputs_for(None), keep, "global")
    assert magnitude.layer_counts()["2.weight"] == 0
    assert min(synflow.layer_counts().values()) > 0


def test_force_rounds_can_revive_pruned_weights():
    """FORCE scores every weight by its dense θ₀, so a mask is not forced to be nested in the previous one."""
    model, data = wide_mlp(1.0), wide_batches()
    start = masks.prune(score("random", model, inputs_for(None)), 0.5, "layerwise")
    chosen = scorer("force", {"rounds": 1}).select(model, inputs_for(data, start), 0.3, "layerwise")
    assert not chosen.issubset(start)


def test_select_does_not_change_the_model():
    model = wide_mlp(2.0)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    for name in SCORERS.names():
        scorer(name, {"rounds": 2} if name in ("synflow", "force") else {}).select(model, inputs_for(wide_batches()), 0.2, "global")
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())
    assert all("effective_weight" not in layer.__dict__ for layer in weight_layers(model).values())
    assert isinstance(masks.prune(score("magnitude", model), 0.2), Mask)
