"""What each sparse-training method does at a mask change, checked against answers computed here.

RigL drops the smallest |θ| and grows the largest dense |∂L/∂θ|, on an update iteration that
replaces the optimizer step (the reference) or follows it (``after_step``); SET grows at random
among inactive weights; Top-KAST's B ⊇ A with gradients reaching B only and its penalty replacing
weight decay; GMP follows the cubic schedule with exact counts; regrown weights get fresh
optimizer state; and under Powerprop (α > 1) a weight regrown at exactly zero never moves,
while the non-zero ``grow_init`` moves.
"""

import math

import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.budgets import erk_densities, plan_counts
from bench_powerprop.masks import kept_count
from bench_powerprop.methods._drop_and_grow import drop_and_grow
from bench_powerprop.options import CellFacts
from bench_powerprop.powerprop import effective_weight_of, powerpropify, theta_from_phi, weight_layers
from bench_powerprop.training.optimizers import parameter_groups

from method_harness import MethodRun, batch, forward_masks, tiny_mlp


# -- drop and grow ---------------------------------------------------------------------------
def test_drop_and_grow_known_answer():
    kept = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    drop_score = torch.tensor([4., 1., 3., 2., 9., 9., 9., 9.])  # drop entries 1 and 3
    grow_score = torch.tensor([0., 8., 0., 0.5, 0.1, 5., 0.2, 7.])  # candidates 1, 3, 4-7: grow 1 and 7
    new_kept, newly_active = drop_and_grow(kept, drop_score, grow_score, 2)
    assert new_kept.tolist() == [True, True, True, False, False, False, False, True]
    assert newly_active.tolist() == [False] * 7 + [True]  # entry 1 was dropped and regrown: not new


def expected_rigl_masks(before, model, alpha, fraction):
    expected = {}
    for name, layer in weight_layers(model).items():
        mask, grad = before[name].reshape(-1), layer.dense_grad.reshape(-1)
        theta = theta_from_phi(layer.weight.detach(), alpha).reshape(-1)
        active = mask.nonzero().squeeze(1)
        n_drop = math.floor(fraction * len(active))
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
    return expected


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_rigl_update_replaces_the_optimizer_step_drops_smallest_theta_grows_largest_gradient(alpha):
    model = tiny_mlp(alpha)
    initial_phi = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}  # before the mask
    run = MethodRun("rigl", {"update_every": 2, "drop_fraction": 0.5, "drop_fraction_schedule": "constant",
                             "update_mode": "replace_step"}, model=model)
    assert run.method.grow_init == ("zeros" if alpha == 1 else "initial")
    before = forward_masks(run.model)
    stepped = run.step(stop_before_after_step=True)  # step 0 is an update step (begin 0, as the TF1 reference)
    assert not stepped, "an update iteration takes no optimizer step (RigL TF1 reference)"
    assert not run.optimizer.state, "no optimizer state: nothing was applied"
    expected = expected_rigl_masks(before, run.model, alpha, 0.5)
    run.finish_step()
    for name, layer in weight_layers(run.model).items():
        assert torch.equal(layer.weight_mask, expected[name]), name
        newly = (layer.weight_mask > 0) & (before[name] == 0)
        survivors = (layer.weight_mask > 0) & (before[name] > 0)
        assert newly.any()
        value = torch.zeros_like(initial_phi[name]) if alpha == 1 else initial_phi[name]
        assert torch.equal(layer.weight.detach()[newly], value[newly])  # grow_init value
        assert torch.equal(layer.weight.detach()[survivors], initial_phi[name][survivors])  # no optimizer step
        assert int(layer.weight_mask.sum()) == int(before[name].sum()) == run.method.target_counts[name]
        assert layer.dense_grad is None and not layer.capture_dense_grad
    assert run.method.mask_updates == 1
    assert run.step(), "step 1 is not an update: the optimizer steps"


def test_rigl_after_step_mode_steps_the_optimizer_then_updates():
    run = MethodRun("rigl", {"update_every": 2, "drop_fraction": 0.5, "drop_fraction_schedule": "constant"},
                    model=tiny_mlp(2.0))  # after_step: the default (rigl_tf2)
    assert run.step() and run.method.mask_updates == 0  # iteration 0: the count after it is 1, no update
    phi_before = {name: layer.weight.detach().clone() for name, layer in weight_layers(run.model).items()}
    before = forward_masks(run.model)
    assert run.step(stop_before_after_step=True)  # iteration 1: the count after it is 2, an update
    expected = expected_rigl_masks(before, run.model, 2.0, 0.5)  # drop by the θ after the optimizer step
    run.finish_step()
    for name, layer in weight_layers(run.model).items():
        assert torch.equal(layer.weight_mask, expected[name]), name
        survivors = (layer.weight_mask > 0) & (before[name] > 0)
        assert (layer.weight.detach()[survivors] != phi_before[name][survivors]).any()
        assert (run.optimizer.state[layer.weight]["momentum_buffer"][(layer.weight_mask > 0) & (before[name] == 0)] == 0).all()


@pytest.mark.parametrize("method", ["rigl", "set"])
def test_drop_and_grow_updates_after_every_delta_t_optimizer_steps_as_rigl_tf2(method):
    """rigl_tf2/train.py: apply_gradients (iterations t -> t + 1), then update if (t + 1) % ΔT == 0 with the drop
    fraction at t + 1: with ΔT = 5 the updates follow iterations 4, 9, 14, 19, each after 5 optimizer steps."""
    run = MethodRun(method, {"update_every": 5, "end_step": 1.0}, sparsity=0.9, steps=20)
    updated_after = []
    for iteration in range(20):
        before = run.method.mask_updates
        assert run.step(), "every iteration takes its optimizer step"
        if run.method.mask_updates > before:
            updated_after.append(iteration)
    assert updated_after == [4, 9, 14, 19]
    assert [run.method.update_clock(t) for t in updated_after] == [5, 10, 15, 20]
    cosine = 0.3 * (1 + math.cos(math.pi * 5 / 20)) / 2  # the drop fraction at t + 1 = 5, not at t = 4
    assert run.method.drop_fraction_at(run.method.update_clock(4)) == pytest.approx(cosine)


def test_rigl_update_schedule_and_cosine_drop_fraction_follow_the_reference():
    run = MethodRun("rigl", {}, sparsity=0.9, steps=1000, prepare=False)
    rigl = run.method
    assert (rigl.begin, rigl.end) == (0, 750)
    assert [step for step in range(1000) if rigl.is_update_step(step)] == list(range(0, 751, 100))  # 0 and end inclusive
    assert rigl.drop_fraction_at(0) == pytest.approx(0.3)
    assert rigl.drop_fraction_at(375) == pytest.approx(0.15)
    assert rigl.drop_fraction_at(700) == pytest.approx(0.3 * (1 + math.cos(math.pi * 700 / 750)) / 2)
    assert rigl.drop_fraction_at(750) == pytest.approx(0.0, abs=1e-12)
    late = MethodRun("rigl", {"begin_step": 50, "update_every": 100}, steps=1000, prepare=False).method
    assert [step for step in range(1000) if late.is_update_step(step)] == list(range(50, 751, 100))


# -- SET -------------------------------------------------------------------------------------
def set_update(seed):
    options = {"update_every": 1, "drop_fraction": 0.5, "drop_fraction_schedule": "constant", "distribution": "uniform",
               "dense_layers": "none"}
    run = MethodRun("set", options, model=tiny_mlp(1.0), seed=seed)
    before = forward_masks(run.model)
    run.ctx.capture_dense_gradients()  # only to compare with what RigL would have grown
    assert run.step(data=batch(), stop_before_after_step=True), "SET steps the optimizer, then updates (reference)"
    thetas = {name: effective_weight_of(layer) for name, layer in weight_layers(run.model).items()}
    grads = {name: layer.dense_grad.clone() for name, layer in weight_layers(run.model).items()}
    run.finish_step()
    return before, forward_masks(run.model), thetas, grads


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
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    run = MethodRun("topkast", {"dense_layers": "none"}, sparsity=0.8, model=model, optimizer=optimizer)
    for _ in range(3):
        phi_before = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}
        run.step(stop_before_after_step=True)
        for name, layer in weight_layers(model).items():
            forward, backward = layer.weight_mask.bool(), layer.weight_grad_mask.bool()
            n = layer.weight.numel()
            assert int(forward.sum()) == run.method.target_counts[name]
            assert int(backward.sum()) == max(run.method.target_counts[name], round(0.4 * n))  # default M = D
            assert (forward <= backward).all()
            magnitude = theta_from_phi(phi_before[name], alpha).abs()
            assert magnitude[forward].min() >= magnitude[~forward].max()  # A = top-D by |θ|
            assert magnitude[backward].min() >= magnitude[~backward].max()  # B = top-(D+M)
            grad = layer.weight.grad
            assert (grad[~backward] == 0).all()
            assert (grad[backward & ~forward] != 0).all()
        run.finish_step()
        for name, layer in weight_layers(model).items():
            outside = ~layer.weight_grad_mask.bool()
            assert torch.equal(layer.weight.detach()[outside], phi_before[name][outside])  # frozen despite momentum + wd
            assert (optimizer.state[layer.weight]["momentum_buffer"][outside] == 0).all()
            assert (layer.weight.detach()[~layer.weight_mask.bool()] != 0).any()  # φ stays dense
            assert int((effective_weight_of(layer) != 0).sum()) == run.method.target_counts[name]  # θ is masked


@pytest.mark.parametrize(("alpha", "penalty_on"), [(1.0, "phi"), (2.0, "phi"), (2.0, "theta")])
def test_topkast_penalty_weights_b_minus_a_by_inverse_density(alpha, penalty_on):
    """penalty/2·(Σ_A w² + Σ_{B∖A} w²/density), w = φ or θ = φ|φ|^(α−1) (θ² = |φ|^(2α))."""
    run = MethodRun("topkast", {"penalty": 2.0, "dense_layers": "none", "penalty_on": penalty_on}, model=tiny_mlp(alpha))
    expected = 0.0
    for name, layer in weight_layers(run.model).items():
        forward, backward, phi = layer.weight_mask, layer.weight_grad_mask, layer.weight.detach()
        w = phi if penalty_on == "phi" else phi * phi.abs() ** (alpha - 1)
        density = run.method.target_counts[name] / phi.numel()
        expected += float((forward * w**2).sum()) + float(((backward - forward) * w**2).sum()) / density
    assert float(run.method.loss_penalty(run.ctx).detach()) == pytest.approx(expected, rel=1e-5)


def test_topkast_penalty_replaces_weight_decay_on_the_masked_weights():
    model = tiny_mlp(1.0)
    groups = parameter_groups(model, 1e-4, exclude_bias_norm=False, exclude_weights=True)
    decay_of = {id(parameter): group["weight_decay"] for group in groups for parameter in group["params"]}
    for layer in weight_layers(model).values():
        assert decay_of[id(layer.weight)] == 0.0  # the exploration penalty is their only decay
        assert decay_of[id(layer.bias)] == 1e-4  # biases keep train.weight_decay
    plain = parameter_groups(model, 1e-4, exclude_bias_norm=True)
    assert {id(p) for g in plain if g["weight_decay"] for p in g["params"]} == {id(layer.weight) for layer in weight_layers(model).values()}


# -- GMP -------------------------------------------------------------------------------------
@pytest.mark.parametrize("end, expected_steps", [(50, [10, 20, 30, 40, 50]), (45, [10, 20, 30, 40, 45])])
def test_gmp_follows_the_cubic_schedule_with_exact_counts(end, expected_steps):
    model = tiny_mlp(2.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    run = MethodRun("gmp", {"begin_step": 10, "end_step": end, "frequency": 10}, sparsity=0.9, steps=60, model=model,
                    optimizer=optimizer)
    gmp = run.method
    assert gmp.pruning_steps() == expected_steps
    layers = weight_layers(model)
    counts = {name: layer.weight.numel() for name, layer in layers.items()}
    for step in range(60):
        previous = dict(counts)
        gmp.before_forward(run.ctx)
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
        masks.enforce(model)  # as the trainer does after every optimizer step
        run.finish_step()
    for name, layer in layers.items():
        assert int(layer.weight_mask.sum()) == gmp.target_counts[name] == kept_count(layer.weight.numel(), 0.1)


def test_gmp_fraction_and_absolute_steps():
    gmp = MethodRun("gmp", {}, sparsity=0.9, steps=1000, prepare=False).method
    assert (gmp.begin, gmp.end) == (250, 750)
    assert gmp.pruning_steps() == list(range(250, 751, 100))
    assert MethodRun("gmp", {"begin_step": 100, "end_step": 1.0}, sparsity=0.9, steps=1000).method.end == 999  # clamped


@pytest.mark.parametrize("method", ["gmp", "topkast", "rigl"])
def test_a_dense_output_layer_stays_whole_and_the_network_keeps_the_same_total(method):
    """dense_layers: last, counted in the budget: the output layer keeps its 64 weights and the whole tiny MLP
    keeps round(0.25 · 1088) = 272, as every-layer-sparse does (equal budgets)."""
    options = {"gmp": {"begin_step": 0, "end_step": 4, "frequency": 2}, "rigl": {"update_every": 2}}.get(method, {})
    runs = {policy: MethodRun(method, {**options, "dense_layers": policy}, sparsity=0.75, steps=10, model=tiny_mlp(1.0))
            for policy in ("last", "none")}
    for run in runs.values():
        for _ in range(10):
            run.step()
    kept = {policy: {name: int(mask.sum()) for name, mask in forward_masks(run.model).items()} for policy, run in runs.items()}
    assert kept["last"]["4.weight"] == 64 and kept["none"]["4.weight"] < 64
    assert sum(kept["last"].values()) == sum(kept["none"].values()) == 272


# -- Powerprop's critical point at zero and fresh optimizer state ----------------------------
@pytest.mark.parametrize("alpha, grow_init, stuck",
                         [(2.0, "zeros", True), (2.0, "initial", False), (2.0, "random", False), (1.0, "zeros", False)])
def test_regrown_weight_moves_unless_zero_under_powerprop(alpha, grow_init, stuck):
    """∂L/∂φ = α|φ|^(α−1)·∂L/∂θ vanishes at φ = 0 for α > 1: a weight regrown at zero stays there."""
    model = tiny_mlp(alpha)
    options = {"begin_step": 5, "update_every": 5, "end_step": 6, "drop_fraction_schedule": "constant", "grow_init": grow_init,
               "update_mode": "replace_step"}
    run = MethodRun("rigl", options, model=model,  # a single update, at step 5; no weight decay: movement is the gradient's
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for _ in range(5):
        run.step()
    before = forward_masks(model)
    run.step()
    grown = {name: (layer.weight_mask > 0) & (before[name] == 0) for name, layer in weight_layers(model).items()}
    at_growth = {name: layer.weight.detach().clone() for name, layer in weight_layers(model).items()}
    for _ in range(10):
        run.step()
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
    run = MethodRun("rigl", {"begin_step": 3, "update_every": 3, "update_mode": "replace_step"}, model=model, optimizer=optimizer)
    for _ in range(3):
        run.step()
    # fill all state with ones, then let the update reset the grown positions
    for layer in weight_layers(model).values():
        for value in optimizer.state[layer.weight].values():
            if torch.is_tensor(value) and value.shape == layer.weight.shape:
                value.fill_(1.0)
    before = forward_masks(model)
    run.step()
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
    epsilon = densities["fc1"] / ratio["fc1"]
    assert epsilon == pytest.approx(densities["fc2"] / ratio["fc2"]) == pytest.approx(densities["out"] / ratio["out"])
    counts = plan_counts(shapes, 0.1, "erk")
    assert sum(counts.values()) == kept_count(50200, 0.1)
    assert all(abs(counts[name] - densities[name] * math.prod(shape)) < 1 for name, shape in shapes.items())
    # a small output layer would exceed density 1: it becomes dense and *counts against* the budget (RigL's code)
    saturated = plan_counts({"big": (1000, 1000), "head": (2, 1000)}, 0.1, "erk")
    assert saturated == {"big": round(0.1 * 1_002_000) - 2000, "head": 2000}
    conv = erk_densities({"conv": (16, 8, 3, 3), "fc": (10, 64)}, 0.2)
    assert conv["conv"] / conv["fc"] == pytest.approx(((16 + 8 + 3 + 3) / (16 * 8 * 9)) / (74 / 640))


def test_layers_kept_dense_by_choice_sit_outside_the_budget():
    """RigL's custom_sparsity_map: a dense layer is not paid for by the others (sparse_utils.py)."""
    shapes = {"first": (300, 64), "fc2": (100, 300), "out": (10, 100)}
    uniform = plan_counts(shapes, 0.1, "uniform", dense_layers=["first"])
    assert uniform == {"first": 19200, "fc2": 3000, "out": 100}  # every other layer still at exactly 10%
    erk = plan_counts(shapes, 0.1, "erk", dense_layers=["first"])
    assert erk["first"] == 19200 and erk["fc2"] + erk["out"] == kept_count(31000, 0.1)
    assert erk["fc2"] / 30000 == pytest.approx(erk_densities({"fc2": (100, 300), "out": (10, 100)}, 0.1)["fc2"], abs=1e-4)


def test_dense_layers_follow_rigls_readme_and_count_in_the_total_budget():
    """RigL's README: uniform keeps the first layer dense, ERK every layer sparse below 99%; the dense layers count
    against the sparsity target unless dense_in_budget is false (tiny MLP: 512 + 512 + 64 weights)."""
    uniform = MethodRun("static", {"distribution": "uniform", "dense_in_budget": False}, sparsity=0.9)
    assert uniform.method.dense_layers == "first"
    counts = uniform.method.target_counts
    assert counts["0.weight"] == 512 and counts["2.weight"] + counts["4.weight"] == 58  # round(0.1 · 576) on top
    erk = MethodRun("static", {"distribution": "erk"}, sparsity=0.9)
    assert erk.method.dense_layers == "none" and erk.method.target_counts["0.weight"] < 512
    assert sum(erk.method.target_counts.values()) == 109  # round(0.1 · 1088)
    last = MethodRun("static", {"distribution": "uniform", "dense_layers": "last"}, sparsity=0.5)
    assert last.method.target_counts == {"0.weight": 240, "2.weight": 240, "4.weight": 64}  # 544 − 64 = 480 over two layers
    with pytest.raises(ValueError, match="dense layers"):  # 99%: RigL's ERK keeps the first layer, 512 > 11 kept weights
        MethodRun("static", {"distribution": "erk"}, sparsity=0.99)


def test_every_sparse_method_declares_its_papers_dense_layers():
    from bench_powerprop.methods import METHODS

    expected = {"topkast": "first_last", "dsr": "first_last", "gmp": "none", "rigl": "none", "set": "none", "static": "none"}
    for method, policy in expected.items():
        cls = METHODS.get(method)
        options = METHODS.options(method).parse({}, f"methods.{method}", CellFacts(sparsity=0.9, steps=100))
        assert cls.dense_layer_policy(options, 0.9) == policy, method
    rigl = METHODS.get("rigl")
    assert rigl.dense_layer_policy(METHODS.options("rigl").parse({}, "m", CellFacts(sparsity=0.99, steps=100)), 0.99) == "first"
    assert METHODS.get("dense").dense_layer_policy(None, 0.0) is None


def test_training_flops_fraction_counts_masks_positions_and_dense_gradient_steps():
    torch.manual_seed(0)
    model = powerpropify(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)), 1.0)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    run = MethodRun("static", {"distribution": "uniform", "dense_layers": "none"}, sparsity=0.75, steps=10, model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(4):
        run.step(data=(x, y))
    static = run.method
    assert static.flops.positions == {"0.weight": 36, "3.weight": 1}
    conv, fc = static.target_counts["0.weight"], static.target_counts["3.weight"]
    assert static.training_flops_fraction() == pytest.approx((conv * 36 + fc) / (36 * 36 + 432))

    model = tiny_mlp(1.0)
    run = MethodRun("rigl", {"update_every": 4, "distribution": "uniform", "dense_layers": "none", "update_mode": "replace_step"}, steps=40,
                    model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))  # updates at 0, 4, ..., 28
    for _ in range(40):
        run.step()
    rigl = run.method
    sparse, dense, updates = sum(rigl.target_counts.values()), sum(rigl.numels.values()), 8
    assert rigl.mask_updates == updates
    expected = (3 * sparse * (40 - updates) + updates * (2 * sparse + dense)) / (3 * dense * 40)
    assert rigl.training_flops_fraction() == pytest.approx(expected)
    assert rigl.report(run.ctx)["training_flops_fraction"] == pytest.approx(expected)
