"""The Mask type, exact selection from scores, and masks held on a model through optimizer steps."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.masks import Mask, kept_count
from bench_powerprop.powerprop import effective_weights, powerpropify, weight_layers
from bench_powerprop.scoring import SCORERS, score
from bench_powerprop.structure import Structure


def mlp(alpha=2.0):
    torch.manual_seed(0)
    return powerpropify(nn.Sequential(nn.Linear(64, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)), alpha)


def magnitude_prune(net, keep, scope="layerwise", last_layer_keep_factor=2.0) -> Mask:
    return masks.prune(score("magnitude", net), keep, scope, last_layer_keep_factor)


# -- the type ------------------------------------------------------------------------------------
def test_mask_counts_densities_and_set_operations():
    a = Mask({"x": torch.tensor([1, 1, 0, 0], dtype=torch.bool), "y": torch.tensor([[1, 0], [0, 0]])})
    b = Mask({"x": torch.tensor([0, 1, 1, 0]), "y": torch.tensor([[1, 1], [0, 0]])})  # ints: stored as bool
    assert a.layer_counts() == {"x": 2, "y": 1} and a.count() == 3 and a.numel() == 8
    assert a.density() == pytest.approx(3 / 8) and a.sparsity() == pytest.approx(5 / 8)
    assert a.layer_density() == {"x": 0.5, "y": 0.25}
    assert (a | b).layer_counts() == {"x": 3, "y": 2}
    assert (a & b).layer_counts() == {"x": 1, "y": 1}
    assert (a - b)["x"].tolist() == [True, False, False, False] and (a - b)["y"].sum() == 0
    assert (a & b).issubset(a) and (a & b).issubset(b) and not a.issubset(b)
    assert (~a).count() == 5 and a == Mask(a) and a != b
    with pytest.raises(ValueError, match="different layers"):
        a | Mask({"x": torch.ones(4)})


def test_mask_save_and_load_round_trip(tmp_path):
    mask = magnitude_prune(mlp(), 0.1)
    mask.save(tmp_path / "mask.pt")
    loaded = Mask.load(tmp_path / "mask.pt")
    assert loaded == mask and loaded.layer_counts() == mask.layer_counts()
    assert all(tensor.dtype == torch.bool for tensor in loaded.values())


# -- selection -----------------------------------------------------------------------------------
@pytest.mark.parametrize("keep", [0.01, 0.0127, 0.05, 0.33, 1.0])
def test_layerwise_counts_are_exact(keep):
    mask = magnitude_prune(mlp(), keep)
    for name, kept in mask.items():
        fraction = min(1.0, 2 * keep) if name == "4.weight" else keep
        assert int(kept.sum()) == max(1, round(fraction * kept.numel()))


def test_masks_keep_largest_effective_weights():
    net = mlp(alpha=3.0)
    thetas = effective_weights(net)
    for name, kept in magnitude_prune(net, 0.1).items():
        assert thetas[name].abs()[kept].min() >= thetas[name].abs()[~kept].max()


def test_global_separate_output_scope_count_and_output_layer():
    mask = magnitude_prune(mlp(), 0.05, scope="global_separate_output")
    hidden = mask["0.weight"].numel() + mask["2.weight"].numel()
    assert int(mask["0.weight"].sum() + mask["2.weight"].sum()) == round(0.05 * hidden)
    assert int(mask["4.weight"].sum()) == round(0.1 * 1000)


@pytest.mark.parametrize("keep", [0.02, 0.05, 0.1, 0.3])
def test_global_scope_ranks_every_layer_together(keep):
    """The kept weights are the top round(keep·N) of all N scores, output layer included (sorted independently in numpy)."""
    net = mlp()
    scores = score("magnitude", net)
    mask = masks.prune(scores, keep, "global")
    joint = np.concatenate([value.numpy().reshape(-1) for value in scores.values()])
    count = int(np.floor(keep * joint.size + 0.5))
    threshold = np.sort(joint)[::-1][count - 1]
    assert mask.count() == count
    for name, value in scores.items():
        assert torch.equal(mask[name], value >= float(threshold)), name  # continuous scores: no ties
    assert mask["4.weight"].sum() != round(keep * 1000)  # the output layer has no budget of its own


def test_global_scope_has_no_output_factor():
    with pytest.raises(ValueError, match="last_layer_keep_factor must be 1"):
        magnitude_prune(mlp(), 0.1, scope="global", last_layer_keep_factor=2.0)


# The references' counts, computed here from their own source lines (Synaptic-Flow Pruners/pruners.py::_global_mask:
# k = int((1.0 - sparsity) * numel) pruned, sparsity being the kept fraction; naver/force get_mask:
# int(len(all_scores) * pruning_factor) kept) and from exact rational arithmetic for the default.
REFERENCE_CASES = [(numel, keep) for numel in (7, 100, 1000, 6400, 50200) for keep in (0.02, 0.1, 0.29, 0.3, 1 / 3, 0.57, 0.7943, 0.99)]


@pytest.mark.parametrize("numel, keep", REFERENCE_CASES)
def test_counts_follow_each_rule(numel, keep):
    exact = Fraction(keep) * numel  # the binary fraction keep, times n, without rounding error
    assert kept_count(numel, keep) == max(1, min(numel, int(exact + Fraction(1, 2)) if exact.denominator != 2 else round(exact)))
    synaptic_flow_pruned = int((1.0 - keep) * numel)
    assert kept_count(numel, keep, "synaptic_flow") == max(1, numel - synaptic_flow_pruned)
    assert kept_count(numel, keep, "force") == kept_count(numel, keep, "floor") == max(1, int(numel * keep))


def test_the_rules_differ_where_floating_point_says_so():
    """0.29·100 is 28.999999999999996 in binary floating point: FORCE and TopK keep 28; Synaptic-Flow prunes
    int(0.71·100) = 71 and keeps 29; round keeps 29. 0.57·100 = 56.99999999999999 (FORCE 56, the others 57)."""
    assert [kept_count(100, 0.29, rule) for rule in ("round", "synaptic_flow", "force", "floor")] == [29, 29, 28, 28]
    assert [kept_count(100, 0.57, rule) for rule in ("round", "synaptic_flow", "force")] == [57, 57, 56]
    assert [kept_count(1000, 0.7943, rule) for rule in ("round", "synaptic_flow", "force")] == [794, 795, 794]


@pytest.mark.parametrize("rule", ["synaptic_flow", "force", "floor", "round"])
@pytest.mark.parametrize("scope", ["layerwise", "global", "global_separate_output"])
def test_reference_rules_keep_their_counts_in_every_scope(rule, scope):
    net = mlp()
    scores = score("magnitude", net)
    keep, factor = 0.0713, (1.0 if scope == "global" else 2.0)
    mask = masks.prune(scores, keep, scope, factor, rule)
    numels = {name: value.numel() for name, value in scores.items()}
    if scope == "global":
        assert mask.count() == kept_count(sum(numels.values()), keep, rule)
        return
    assert mask.layer_counts()["4.weight"] == kept_count(1000, min(1.0, factor * keep), rule)
    if scope == "layerwise":
        assert all(mask.layer_counts()[name] == kept_count(numels[name], keep, rule) for name in ("0.weight", "2.weight"))
    else:
        assert mask.layer_counts()["0.weight"] + mask.layer_counts()["2.weight"] == kept_count(64 * 300 + 300 * 100, keep, rule)


def test_ties_at_the_threshold_follow_each_reference():
    """Six scores tie at the threshold of keeping 5 of 10: Synaptic-Flow prunes every score <= the 5th smallest
    (keeps 4), FORCE keeps every score >= the 5th largest (keeps 10), the exact rules keep 5."""
    scores = {"w": torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0])}
    assert masks.prune(scores, 0.5, rounding="synaptic_flow")["w"].tolist() == [False] * 6 + [True] * 4
    assert masks.prune(scores, 0.5, rounding="force")["w"].all()
    assert masks.prune(scores, 0.5, rounding="round")["w"].sum() == 5 == masks.prune(scores, 0.5, rounding="floor")["w"].sum()
    assert masks.prune(scores, 0.95, rounding="synaptic_flow")["w"].all()  # int(0.05·10) = 0 pruned: the reference skips


def test_ties_still_give_exact_counts():
    net = powerpropify(nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2)), 1.0)
    with torch.no_grad():
        net[0].weight.fill_(0.5)
    assert int(magnitude_prune(net, 0.37)["0.weight"].sum()) == 37


def test_full_mask_keeps_every_weight_and_random_mask_exact_counts_in_every_layer():
    net = mlp()
    full = Mask.full(net)
    assert full.count() == sum(int(theta.numel()) for theta in effective_weights(net).values())
    shapes = {name: tuple(theta.shape) for name, theta in effective_weights(net).items()}
    counts = {name: 1 + index for index, name in enumerate(shapes)}
    drawn = masks.random_mask(shapes, counts, torch.Generator().manual_seed(0))
    assert {name: int(kept.sum()) for name, kept in drawn.items()} == counts
    assert {name: tuple(kept.shape) for name, kept in drawn.items()} == shapes


def test_mask_equality_needs_the_same_layers():
    kept = torch.tensor([True, False])
    assert Mask({"a": kept}) == Mask({"a": kept.clone()})
    assert Mask({"a": kept}) != Mask({"a": kept, "b": kept})  # a layer more is another mask
    assert Mask({"a": kept}) != Mask({"a": ~kept})


def test_topk_of_one_keeps_the_largest():
    assert masks.topk(torch.tensor([0.5, 3.0, 1.0]), 1).tolist() == [False, True, False]
    assert not masks.topk(torch.tensor([0.5, 3.0]), 0).any()


def test_zero_and_masked_fractions_count_every_layer():
    net = mlp()
    total = sum(int(theta.numel()) for theta in effective_weights(net).values())
    assert masks.masked_fraction(net, None) == 0.0 and masks.zero_fraction(net) == 0.0
    mask = magnitude_prune(net, 0.1)
    masks.install(net, mask)
    assert masks.masked_fraction(net, mask) == pytest.approx(1 - mask.count() / total)
    assert masks.zero_fraction(net) == pytest.approx(1 - mask.count() / total)
    assert masks.layer_zero_fractions(net) == pytest.approx({name: 1 - float(kept.float().mean()) for name, kept in mask.items()})


def test_enforce_reaches_every_layer_after_a_skipped_one_and_clear_stops_it():
    net = mlp()
    masks.install(net, magnitude_prune(net, 0.1))
    layers = list(weight_layers(net).values())
    layers[0].masked_phi_stay_zero = True  # skipped: its state was found clean
    with torch.no_grad():
        for layer in layers:
            layer.weight.add_(1.0)  # every masked φ moved
    masks.enforce(net)
    assert (layers[0].weight.detach()[layers[0].weight_mask == 0] != 0).all()  # the skipped layer left as it is
    for layer in layers[1:]:
        assert (layer.weight.detach()[layer.weight_mask == 0] == 0).all()
    masks.clear(net, masks.BACKWARD)
    assert all(layer.zero_outside_mask for layer in layers)  # clearing the backward mask keeps the forward's rule
    masks.clear(net, masks.FORWARD)
    assert not any(layer.zero_outside_mask for layer in layers)


def test_enforce_checks_the_optimizer_state_once_per_installed_mask(monkeypatch):
    net = mlp()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    nn.functional.cross_entropy(net(torch.randn(8, 64)), torch.randint(0, 10, (8,))).backward()
    optimizer.step()  # dense momentum at what the mask then removes: the layers are never skipped
    masks.install(net, magnitude_prune(net, 0.1))
    checked, original = [], masks._no_state_where_masked
    monkeypatch.setattr(masks, "_no_state_where_masked", lambda *args: checked.append(1) or original(*args))
    for _ in range(3):
        masks.enforce(net, optimizer)
    assert len(checked) == len(weight_layers(net))


def test_a_backward_mask_never_zeroes_phi_and_an_empty_mask_is_dense():
    net = mlp()
    mask = magnitude_prune(net, 0.1)
    masks.install(net, mask, masks.FORWARD, zero_masked=False)  # Top-KAST: φ stays dense outside the forward set
    masks.install(net, mask, masks.BACKWARD)
    assert not any(layer.zero_outside_mask for layer in weight_layers(net).values())
    assert Mask({}).density() == 1.0
    net = mlp()
    masks.install(net, mask)
    with torch.no_grad():
        for layer in weight_layers(net).values():
            layer.weight.add_(1.0)
    masks.install(net, mask, masks.BACKWARD)  # installing a backward mask enforces nothing
    assert all((layer.weight.detach()[layer.weight_mask == 0] != 0).all() for layer in weight_layers(net).values())


def test_combining_masks_of_different_layers_names_the_difference():
    kept = torch.tensor([True, False])
    with pytest.raises(ValueError, match=r"masks name different layers: \['b', 'c'\]$"):
        Mask({"a": kept, "b": kept}) | Mask({"a": kept, "c": kept})


def test_a_layer_whose_optimizer_state_is_clean_where_masked_is_skipped():
    net = mlp()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    masks.install(net, magnitude_prune(net, 0.1))  # before any step: no state at masked positions
    for _ in range(2):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(torch.randn(8, 64)), torch.randint(0, 10, (8,))).backward()
        optimizer.step()
        masks.enforce(net, optimizer)
    assert all(layer.masked_phi_stay_zero for layer in weight_layers(net).values())


def test_synaptic_flow_rounding_prunes_a_single_weight():
    kept = masks.choose(torch.arange(10.0), 0.8, "synaptic_flow")  # int((1 − 0.8)·10) = int(1.99…) = 1 pruned
    assert kept.tolist() == [False] + [True] * 9


def test_kept_count_rejects_bad_keep():
    for keep in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            kept_count(100, keep)


# (the data-dependent scorers are tested against their formulas in tests/test_scorers.py)
@pytest.mark.parametrize("name", [name for name in SCORERS.names() if not SCORERS.get(name).needs_data])
def test_every_data_free_scorer_scores_every_weight(name):
    net = mlp()
    scores = score(name, net)
    assert {key: value.shape for key, value in scores.items()} == {key: theta.shape for key, theta in effective_weights(net).items()}
    assert all(torch.isfinite(value).all() for value in scores.values())


# -- on a model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("optimizer_name", ["sgd_momentum_wd", "adam"])
def test_masks_hold_through_optimizer_steps(optimizer_name):
    net = mlp()
    # momentum state built up densely first, then masks appear (as under gradual pruning)
    optimizer = (torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
                 if optimizer_name == "sgd_momentum_wd" else torch.optim.Adam(net.parameters(), lr=1e-2))
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    for step in range(5):
        if step == 2:
            mask = magnitude_prune(net, 0.1)
            masks.install(net, mask)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        masks.enforce(net, optimizer)
    assert masks.forward_mask(net) == mask
    state_key = "momentum_buffer" if optimizer_name == "sgd_momentum_wd" else "exp_avg"
    for name, layer in weight_layers(net).items():
        masked = ~mask[name]
        # the dense state from before the mask still pushes the masked φ: only the enforce keeps them at zero
        assert (optimizer.state[layer.weight][state_key][masked] != 0).any(), name
        assert not layer.masked_phi_stay_zero, name  # so the enforce must not skip this layer
        assert (layer.weight.detach()[masked] == 0).all(), name  # φ, not only θ (the mask multiplies θ anyway)
    for name, theta in effective_weights(net).items():
        assert (theta[~mask[name]] == 0).all()
        assert int((theta != 0).sum()) == int(mask[name].sum())


def test_install_on_a_plain_model_converts_with_alpha_one_and_clear_removes():
    net = nn.Sequential(nn.Linear(4, 4))
    before = net[0].weight.detach().clone()
    kept = torch.ones(4, 4, dtype=torch.bool)
    kept[0] = False
    masks.install(net, Mask({"0.weight": kept}))
    assert net[0].alpha == 1.0
    assert torch.equal(net[0].weight.detach(), before * kept)
    masks.install(net, Mask({"0.weight": torch.ones(4, 4)}), masks.BACKWARD)
    assert masks.backward_mask(net).count() == 16 and masks.forward_mask(net).count() == 12
    masks.clear(net, masks.BACKWARD)
    assert masks.backward_mask(net) is None


def test_unstructured_grouping_is_one_weight_per_group_and_ungrouped_inverts_it():
    weights = torch.arange(24.0).reshape(2, 3, 4)
    groups = masks.grouped(weights, masks.UNSTRUCTURED)  # what drop-and-grow pools when a run is unstructured
    assert groups.shape == (24, 1) and torch.equal(groups[:, 0], weights.flatten())
    assert torch.equal(masks.ungrouped(groups, (2, 3, 4), masks.UNSTRUCTURED), weights)


@pytest.mark.parametrize("structure", [Structure("channel"), Structure("n_of_m", n=2, m=4), Structure("block", rows=2, cols=2)])
def test_a_fully_kept_structured_layer_draws_nothing_from_the_generator(structure):
    """A layer kept whole (e.g. an exempt output layer) leaves the other layers' random masks as drawn without it."""
    shapes, counts = {"a": (4, 8), "b": (4, 8)}, {"a": 32, "b": 16}
    both = masks.random_mask(shapes, counts, torch.Generator().manual_seed(3), structure)
    alone = masks.random_mask({"b": (4, 8)}, {"b": 16}, torch.Generator().manual_seed(3), structure)
    assert bool(both["a"].all()) and torch.equal(both["b"], alone["b"]) and int(both["b"].sum()) == 16


def test_block_tiling_needs_both_dimensions_and_a_channel_layer_keeps_at_least_one_channel():
    block = Structure("block", rows=2, cols=4)
    assert masks.check_divisible((4, 8), block) is None
    assert masks.check_divisible((4, 6), block) == "its 4×6 weight matrix is not tiled by 2×4 blocks"  # inputs only
    assert masks.check_divisible((3, 8), block) == "its 3×8 weight matrix is not tiled by 2×4 blocks"  # outputs only
    channel = Structure("channel")
    assert masks.realisable((4, 8), 1, channel) == 8 and masks.realisable((4, 8), 13, channel) == 16


def test_a_random_n_of_m_mask_reduces_exactly_the_groups_its_count_needs():
    structure = Structure("n_of_m", n=2, m=4)
    kept = masks.random_mask({"w": (4, 8)}, {"w": 24}, torch.Generator().manual_seed(0), structure)["w"]
    per_group = kept.reshape(-1, 4).sum(1)  # consecutive inputs of one output: the groups of m = 4
    assert int(kept.sum()) == 24 and sorted(per_group.tolist()) == [2] * 4 + [4] * 4


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_mask_file_whose_pickle_would_run_code_is_refused(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "mask.pt"
    torch.save({"0.weight": _RunsCode(marker)}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        Mask.load(path)
    assert not marker.exists()
