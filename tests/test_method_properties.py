"""What each sparse-training method does at a mask change, checked against answers computed here.

RigL drops the smallest |θ| and grows the largest dense |∂L/∂θ|; SET grows at random among
inactive weights; Top-KAST's B ⊇ A with gradients reaching B only; GMP follows the cubic
schedule with exact counts; regrown weights get fresh optimizer state; and under Powerprop
(α > 1) a weight regrown at exactly zero never moves, while the non-zero ``grow_init`` moves.
"""

import math

import pytest
import torch
from torch import nn

from bench_powerprop.methods import METHODS
from bench_powerprop.methods._masking import drop_and_grow, erk_densities, plan_counts
from bench_powerprop.powerprop import effective_weight_of, powerpropify, theta_from_phi, weight_layers
from bench_powerprop.pruning import kept_count

GMP, RIGL, SET, STATIC, TOPKAST = (METHODS[name] for name in ("gmp", "rigl", "set", "static", "topkast"))


def tiny_mlp(alpha=2.0, seed=0):
    torch.manual_seed(seed)
    return powerpropify(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)), alpha)


def batch(seed=1, n=64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 16, generator=generator), torch.randint(0, 4, (n,), generator=generator)


def train_step(method, model, optimizer, step, data=None, stop_before_after_step=False):
    """One trainer step with the method's hooks (the order of ``Trainer.train_step``)."""
    x, y = data or batch(seed=100 + step)
    method.before_forward(model, step)
    loss = nn.functional.cross_entropy(model(x), y)
    penalty = method.loss_penalty(model)
    optimizer.zero_grad(set_to_none=True)
    (loss if penalty is None else loss + penalty).backward()
    method.after_backward(model, optimizer, step)
    optimizer.step()
    if not stop_before_after_step:
        method.after_step(model, optimizer, step)


def masks(model):
    return {name: layer.weight_mask.clone() for name, layer in weight_layers(model).items()}


# -- drop and grow ---------------------------------------------------------------------------
def test_drop_and_grow_known_answer():
    mask = torch.tensor([1., 1., 1., 1., 0., 0., 0., 0.])
    drop_score = torch.tensor([4., 1., 3., 2., 9., 9., 9., 9.])  # drop entries 1 and 3
    grow_score = torch.tensor([0., 8., 0., 0.5, 0.1, 5., 0.2, 7.])  # candidates 1, 3, 4-7: grow 1 and 7
    new_mask, newly_active = drop_and_grow(mask, drop_score, grow_score, 2)
    assert new_mask.tolist() == [1., 1., 1., 0., 0., 0., 0., 1.]
    assert newly_active.tolist() == [False] * 7 + [True]  # entry 1 was dropped and regrown: not new


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_rigl_drops_smallest_theta_and_grows_largest_dense_gradient(alpha):
    model = tiny_mlp(alpha)
    initial_phi = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}
    rigl = RIGL({"update_every": 1, "drop_fraction": 0.5, "drop_fraction_schedule": "constant"}, 0.75, 100, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rigl.setup(model, optimizer)
    assert rigl.grow_init == ("zeros" if alpha == 1 else "initial")
    train_step(rigl, model, optimizer, 0)  # step 0 is never an update
    before = masks(model)
    train_step(rigl, model, optimizer, 1, stop_before_after_step=True)
    expected = {}
    for name, layer in weight_layers(model).items():
        mask, theta, grad = before[name].reshape(-1), theta_from_phi(layer.weight.detach(), alpha).reshape(-1), layer.dense_grad.reshape(-1)
        active = mask.nonzero().squeeze(1)
        n_drop = math.floor(0.5 * len(active))
        kept = active[theta[active].abs().argsort(descending=True)[: len(active) - n_drop]]
        candidates = torch.ones_like(mask, dtype=torch.bool)
        candidates[kept] = False
        candidate_idx = candidates.nonzero().squeeze(1)
        grown = candidate_idx[grad[candidate_idx].abs().argsort(descending=True)[:n_drop]]
        new = torch.zeros_like(mask)
        new[kept], new[grown] = 1, 1
        expected[name] = new.view_as(layer.weight)
        dropped = mask.bool() & ~new.bool()
        assert theta[dropped].abs().max() <= theta[kept].abs().min()
    rigl.after_step(model, optimizer, 1)
    for name, layer in weight_layers(model).items():
        assert torch.equal(layer.weight_mask, expected[name]), name
        newly = (layer.weight_mask > 0) & (before[name] == 0)
        assert newly.any()
        value = torch.zeros_like(initial_phi[name]) if alpha == 1 else initial_phi[name]
        assert torch.equal(layer.weight.detach()[newly], value[newly])  # grow_init value
        assert (optimizer.state[layer.weight]["momentum_buffer"][newly] == 0).all()  # fresh state
        assert int(layer.weight_mask.sum()) == int(before[name].sum()) == rigl.target_counts[name]
        assert layer.dense_grad is None and not layer.capture_dense_grad
    assert rigl.mask_updates == 1


def test_rigl_drop_fraction_cosine_schedule_and_end():
    rigl = RIGL({}, 0.9, 1000, seed=0)
    assert rigl.end_step == 750
    assert [step for step in range(1000) if rigl.is_update_step(step)] == list(range(100, 750, 100))
    assert rigl.drop_fraction_at(0) == pytest.approx(0.3)
    assert rigl.drop_fraction_at(375) == pytest.approx(0.15)
    assert rigl.drop_fraction_at(700) == pytest.approx(0.3 * (1 + math.cos(math.pi * 700 / 750)) / 2)


# -- SET -------------------------------------------------------------------------------------
def set_update(seed):
    model = tiny_mlp(1.0)
    options = {"update_every": 1, "drop_fraction": 0.5, "drop_fraction_schedule": "constant", "distribution": "uniform"}
    method = SET(options, 0.75, 100, seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    method.setup(model, optimizer)
    before = masks(model)
    for layer in weight_layers(model).values():
        layer.capture_dense_grad = True  # only to compare with what RigL would have grown
    train_step(method, model, optimizer, 1, data=batch(), stop_before_after_step=True)
    thetas = {name: effective_weight_of(layer) for name, layer in weight_layers(model).items()}
    grads = {name: layer.dense_grad.clone() for name, layer in weight_layers(model).items()}
    method.after_step(model, optimizer, 1)
    return before, masks(model), thetas, grads


def test_set_grows_at_random_among_inactive_weights():
    before, after, thetas, grads = set_update(seed=0)
    _, after_same_seed, _, _ = set_update(seed=0)
    _, after_other_seed, _, _ = set_update(seed=1)
    name = "0.weight"  # 512 weights, 128 active, 64 dropped by magnitude, 64 grown among the other 448
    old, new = before[name].bool(), after[name].bool()
    assert int(new.sum()) == int(old.sum()) == 128
    grown = new & ~old
    assert grown.sum() > 0 and not (grown & old).any()  # new connections come from inactive positions only
    magnitude = thetas[name].abs().masked_fill(~old, -1).reshape(-1)
    by_magnitude = torch.zeros_like(old)
    by_magnitude.view(-1)[magnitude.topk(64).indices] = True
    assert (by_magnitude <= new).all()  # the 64 largest |θ| survive; the drop is by magnitude
    regrown = new & ~by_magnitude  # 64 random picks among the 448 not kept (dropped ones included)
    assert int(regrown.sum()) == 64
    top_gradient = torch.zeros_like(old)
    top_gradient.view(-1)[grads[name].abs().masked_fill(by_magnitude, -1).reshape(-1).topk(64).indices] = True
    assert int((regrown & top_gradient).sum()) < 32  # not gradient-driven: expected overlap 64·64/448 ≈ 9
    assert all(torch.equal(after[n], after_same_seed[n]) for n in after)  # seeded
    assert not torch.equal(after[name], after_other_seed[name])


# -- Top-KAST --------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_topkast_backward_set_contains_forward_set_and_only_it_gets_gradient(alpha):
    model = tiny_mlp(alpha)
    method = TOPKAST({}, 0.8, 100, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    method.setup(model, optimizer)
    for step in range(3):
        phi_before = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}
        train_step(method, model, optimizer, step, stop_before_after_step=True)
        for name, layer in weight_layers(model).items():
            forward, backward = layer.weight_mask.bool(), layer.weight_grad_mask.bool()
            n = layer.weight.numel()
            assert int(forward.sum()) == method.target_counts[name]
            assert int(backward.sum()) == max(method.target_counts[name], round(0.4 * n))  # default M = D
            assert (forward <= backward).all()
            magnitude = theta_from_phi(phi_before[name], alpha).abs()
            assert magnitude[forward].min() >= magnitude[~forward].max()  # A = top-D by |θ|
            assert magnitude[backward].min() >= magnitude[~backward].max()  # B = top-(D+M)
            grad = layer.weight.grad
            assert (grad[~backward] == 0).all()
            assert (grad[backward & ~forward] != 0).all()
        method.after_step(model, optimizer, step)
        for name, layer in weight_layers(model).items():
            outside = ~layer.weight_grad_mask.bool()
            assert torch.equal(layer.weight.detach()[outside], phi_before[name][outside])  # frozen despite momentum + wd
            assert (optimizer.state[layer.weight]["momentum_buffer"][outside] == 0).all()
            assert (layer.weight.detach()[~layer.weight_mask.bool()] != 0).any()  # φ stays dense
            assert int((effective_weight_of(layer) != 0).sum()) == method.target_counts[name]  # θ is masked


def test_topkast_penalty_weights_b_minus_a_by_inverse_density():
    model = tiny_mlp(1.0)
    method = TOPKAST({"penalty": 2.0}, 0.75, 100, seed=0)
    method.setup(model, torch.optim.SGD(model.parameters(), lr=0.1))
    expected = 0.0
    for name, layer in weight_layers(model).items():
        forward, backward, phi = layer.weight_mask, layer.weight_grad_mask, layer.weight.detach()
        density = method.target_counts[name] / phi.numel()
        expected += float((forward * phi**2).sum()) + float(((backward - forward) * phi**2).sum()) / density
    assert float(method.loss_penalty(model).detach()) == pytest.approx(expected, rel=1e-5)


# -- GMP -------------------------------------------------------------------------------------
@pytest.mark.parametrize("end, expected_steps", [(50, [10, 20, 30, 40, 50]), (45, [10, 20, 30, 40, 45])])
def test_gmp_follows_the_cubic_schedule_with_exact_counts(end, expected_steps):
    model = tiny_mlp(2.0)
    gmp = GMP({"begin_step": 10, "end_step": end, "frequency": 10}, 0.9, 60, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    gmp.setup(model, optimizer)
    assert gmp.pruning_steps() == expected_steps
    layers = weight_layers(model)
    counts = {name: layer.weight.numel() for name, layer in layers.items()}
    for step in range(60):
        previous = dict(counts)
        gmp.before_forward(model, step)
        counts = {name: int((effective_weight_of(layer) != 0).sum()) for name, layer in layers.items()}
        if step in expected_steps:
            scheduled = 0.9 + (0.0 - 0.9) * (1 - (step - 10) / (end - 10)) ** 3
            for name, layer in layers.items():
                if scheduled == 0:  # s_i = 0 at t₀: nothing to prune yet
                    assert layer.weight_mask is None and counts[name] == layer.weight.numel()
                    continue
                assert int(layer.weight_mask.sum()) == kept_count(layer.weight.numel(), 1 - scheduled), (step, name)
                assert counts[name] == int(layer.weight_mask.sum())
        else:
            assert counts == previous, step
        x, y = batch(seed=step)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        gmp.after_step(model, optimizer, step)
    for name, layer in layers.items():
        assert int(layer.weight_mask.sum()) == gmp.target_counts[name] == kept_count(layer.weight.numel(), 0.1)


def test_gmp_fraction_and_absolute_steps():
    gmp = GMP({}, 0.9, 1000, seed=0)
    assert (gmp.begin, gmp.end) == (250, 750)
    assert gmp.pruning_steps() == list(range(250, 751, 100))
    assert GMP({"begin_step": 100, "end_step": 1.0}, 0.9, 1000, seed=0).end == 999  # clamped into training


# -- Powerprop's critical point at zero and fresh optimizer state ----------------------------
@pytest.mark.parametrize("alpha, grow_init, stuck", [(2.0, "zeros", True), (2.0, "initial", False), (2.0, "random", False), (1.0, "zeros", False)])
def test_regrown_weight_moves_unless_zero_under_powerprop(alpha, grow_init, stuck):
    """∂L/∂φ = α|φ|^(α−1)·∂L/∂θ vanishes at φ = 0 for α > 1: a weight regrown at zero stays there."""
    model = tiny_mlp(alpha)
    options = {"update_every": 5, "end_step": 6, "drop_fraction_schedule": "constant", "grow_init": grow_init}
    rigl = RIGL(options, 0.75, 100, seed=0)  # a single update, at step 5
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # no weight decay: movement is the gradient's
    rigl.setup(model, optimizer)
    for step in range(5):
        train_step(rigl, model, optimizer, step)
    before = masks(model)
    train_step(rigl, model, optimizer, 5)
    grown = {name: (layer.weight_mask > 0) & (before[name] == 0) for name, layer in weight_layers(model).items()}
    at_growth = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}
    for step in range(6, 16):
        train_step(rigl, model, optimizer, step)
    for name, layer in weight_layers(model).items():
        phi = layer.weight.detach()[grown[name]]
        assert grown[name].sum() > 0 and (layer.weight_mask[grown[name]] == 1).all()
        if stuck:
            assert (phi == 0).all(), name
        else:
            moved = (phi != at_growth[name][grown[name]]) & (phi != 0)
            assert moved.float().mean() > 0.9, (name, float(moved.float().mean()))


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_grown_weights_get_fresh_optimizer_state(optimizer_name):
    model = tiny_mlp(2.0)
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3) if optimizer_name == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=1e-2))
    rigl = RIGL({"update_every": 3}, 0.75, 100, seed=0)
    rigl.setup(model, optimizer)
    for step in range(3):
        train_step(rigl, model, optimizer, step)
    # step 2 was plain; state at some inactive positions is stale-nonzero only where weights were active before,
    # so make the check strong: fill all state with ones, then let the update reset the grown positions
    for layer in weight_layers(model).values():
        for value in optimizer.state[layer.weight].values():
            if torch.is_tensor(value) and value.shape == layer.weight.shape:
                value.fill_(1.0)
    before = masks(model)
    train_step(rigl, model, optimizer, 3, stop_before_after_step=True)
    rigl.after_step(model, optimizer, 3)
    keys = ["momentum_buffer"] if optimizer_name == "sgd" else ["exp_avg", "exp_avg_sq"]
    for name, layer in weight_layers(model).items():
        grown = (layer.weight_mask > 0) & (before[name] == 0)
        kept = (layer.weight_mask > 0) & (before[name] > 0)
        assert grown.any()
        for key in keys:
            state = optimizer.state[layer.weight][key]
            assert (state[grown] == 0).all(), (name, key)
            assert (state[kept] != 0).all(), (name, key)


# -- layer densities and FLOPs ---------------------------------------------------------------
def test_erk_densities_follow_the_formula_and_saturate_to_dense():
    shapes = {"fc1": (300, 64), "fc2": (100, 300), "out": (10, 100)}
    densities = erk_densities(shapes, 0.1)
    ratio = {name: sum(shape) / math.prod(shape) for name, shape in shapes.items()}
    assert densities["fc1"] / ratio["fc1"] == pytest.approx(densities["fc2"] / ratio["fc2"]) == pytest.approx(densities["out"] / ratio["out"])
    counts = plan_counts(shapes, 0.1, "erk")
    assert sum(counts.values()) == kept_count(50200, 0.1)
    assert all(abs(counts[name] - densities[name] * math.prod(shape)) < 1 for name, shape in shapes.items())
    # a small output layer would exceed density 1: it becomes dense and the rest meet the budget
    saturated = plan_counts({"big": (1000, 1000), "head": (2, 1000)}, 0.1, "erk")
    assert saturated == {"big": round(0.1 * 1_002_000) - 2000, "head": 2000}
    conv = erk_densities({"conv": (16, 8, 3, 3), "fc": (10, 64)}, 0.2)
    assert conv["conv"] / conv["fc"] == pytest.approx(((16 + 8 + 3 + 3) / (16 * 8 * 9)) / (74 / 640))
    uniform = plan_counts(shapes, 0.1, "uniform", dense_layers=["out"])
    assert uniform["out"] == 1000 and sum(uniform.values()) == 5020


def test_training_flops_fraction_counts_masks_positions_and_dense_gradient_steps():
    torch.manual_seed(0)
    model = powerpropify(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)), 1.0)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    static = STATIC({"distribution": "uniform"}, 0.75, 10, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    static.setup(model, optimizer)
    for step in range(4):
        train_step(static, model, optimizer, step, data=(x, y))
    assert static.flops.positions == {"0.weight": 36, "3.weight": 1}
    conv, fc = static.target_counts["0.weight"], static.target_counts["3.weight"]
    assert static.training_flops_fraction() == pytest.approx((conv * 36 + fc) / (36 * 36 + 432))

    model = tiny_mlp(1.0)
    rigl = RIGL({"update_every": 4, "distribution": "uniform"}, 0.75, 40, seed=0)  # updates at 4, 8, ..., 28
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rigl.setup(model, optimizer)
    for step in range(40):
        train_step(rigl, model, optimizer, step)
    sparse, dense, updates = sum(rigl.target_counts.values()), sum(rigl.numels.values()), 7
    assert rigl.mask_updates == updates
    expected = (3 * sparse * (40 - updates) + updates * (2 * sparse + dense)) / (3 * dense * 40)
    assert rigl.training_flops_fraction() == pytest.approx(expected)
    assert rigl.report(model)["training_flops_fraction"] == pytest.approx(expected)
