"""Exact magnitude masks on effective weights, and masks held through optimizer steps."""

import pytest
import torch
from torch import nn

from bench_powerprop.powerprop import effective_weights, powerpropify
from bench_powerprop.pruning import apply_masks, enforce_masks, kept_count, magnitude_masks


def mlp(alpha=2.0):
    torch.manual_seed(0)
    return powerpropify(nn.Sequential(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)), alpha)


@pytest.mark.parametrize("keep", [0.01, 0.0127, 0.05, 0.33, 1.0])
def test_layerwise_counts_are_exact(keep):
    net = mlp()
    masks = magnitude_masks(net, keep, last_layer_keep_factor=2.0)
    for name, mask in masks.items():
        fraction = min(1.0, 2 * keep) if name == "4.weight" else keep
        assert int(mask.sum()) == max(1, round(fraction * mask.numel()))


def test_masks_keep_largest_effective_weights():
    net = mlp(alpha=3.0)
    thetas = effective_weights(net)
    masks = magnitude_masks(net, 0.1)
    for name, mask in masks.items():
        kept, dropped = thetas[name].abs()[mask.bool()], thetas[name].abs()[~mask.bool()]
        assert kept.min() >= dropped.max()


def test_global_scope_count_and_output_layer():
    net = mlp()
    masks = magnitude_masks(net, 0.05, scope="global", last_layer_keep_factor=2.0)
    hidden = masks["0.weight"].numel() + masks["2.weight"].numel()
    assert int(masks["0.weight"].sum() + masks["2.weight"].sum()) == round(0.05 * hidden)
    assert int(masks["4.weight"].sum()) == round(0.1 * 1000)


def test_ties_still_give_exact_counts():
    net = powerpropify(nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2)), 1.0)
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    assert int(magnitude_masks(net, 0.37)["0.weight"].sum()) == 37


def test_kept_count_rejects_bad_keep():
    for keep in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            kept_count(100, keep)


@pytest.mark.parametrize("optimizer_name", ["sgd_momentum_wd", "adam"])
def test_masks_hold_through_optimizer_steps(optimizer_name):
    net = mlp()
    # momentum state built up densely first, then masks appear (as under gradual pruning)
    optimizer = (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
                 if optimizer_name == "sgd_momentum_wd" else torch.optim.Adam(net.parameters(), lr=1e-2))
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    for step in range(5):
        if step == 2:
            masks = magnitude_masks(net, 0.1)
            apply_masks(net, masks)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        enforce_masks(net)
    for name, theta in effective_weights(net).items():
        assert (theta[masks[name] == 0] == 0).all()
        assert int((theta != 0).sum()) == int(masks[name].sum())


def test_apply_masks_to_plain_model_converts_with_alpha_one():
    net = nn.Sequential(nn.Linear(4, 4))
    before = net[0].weight.detach().clone()
    mask = torch.ones(4, 4)
    mask[0] = 0
    apply_masks(net, {"0.weight": mask})
    assert net[0].alpha == 1.0
    assert torch.equal(net[0].weight.detach(), before * mask)
