"""DSR (Mostafa & Wang 2019, Algorithm 1): one global threshold that adapts toward N_p pruned weights per
re-allocation, survivors' share deciding where the pruned weights grow back, the total count exact."""

import math

import pytest
import torch

from bench_powerprop.methods.dsr import proportional_counts, threshold_update
from bench_powerprop.powerprop import effective_weight_of, weight_layers

from method_harness import MethodRun, forward_masks, tiny_mlp

OPTIONS = {"update_every": 1, "distribution": "uniform", "dense_layers": "none", "prune_target": 0.1}


def dsr_run(alpha=2.0, seed=0, **options):
    return MethodRun("dsr", {**OPTIONS, **options}, model=tiny_mlp(alpha), seed=seed)


def one_update(run):
    """One step whose after_step re-allocates; returns (masks before, |θ| the update saw, masks after)."""
    before = {name: mask.bool() for name, mask in forward_masks(run.model).items()}
    assert run.step(stop_before_after_step=True)  # after_step mode: the optimizer steps, then DSR updates
    magnitudes = {name: effective_weight_of(layer).detach().abs() for name, layer in weight_layers(run.model).items()}
    run.finish_step()
    after = {name: mask.bool() for name, mask in forward_masks(run.model).items()}
    return before, magnitudes, after


def pruned_count(kept, magnitude, threshold):
    """Active weights below H; a layer whose every weight is below keeps one (the reference's rule)."""
    below = int((kept & (magnitude < threshold)).sum())
    return below - 1 if below == int(kept.sum()) else below


def active(masks):
    return sum(int(kept.sum()) for kept in masks.values())


def test_threshold_rule_is_algorithm_1():
    assert threshold_update(0.1, pruned=80, target=100, tolerance=0.1) == 0.2  # too few: H doubles
    assert threshold_update(0.1, pruned=111, target=100, tolerance=0.1) == 0.05  # too many: H halves
    for pruned in (90, 100, 110):
        assert threshold_update(0.1, pruned=pruned, target=100, tolerance=0.1) == 0.1  # within ±δ: unchanged


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_threshold_adapts_toward_the_target_number_pruned(alpha):
    run = dsr_run(alpha, initial_threshold=1e-6)
    run.step()  # step 0 never re-allocates (reference: iteration 0 is skipped)
    assert run.method.threshold == 1e-6 and run.method.mask_updates == 0
    target = 0.1 * active(forward_masks(run.model))  # N_p = prune_target × active weights
    history = []
    for _ in range(30):
        threshold = run.method.threshold
        before, magnitudes, _ = one_update(run)
        pruned = sum(pruned_count(before[name], magnitudes[name], threshold) for name in before)
        assert pruned == run.method.last_pruned
        expected = threshold * 2 if pruned < 0.9 * target else threshold / 2 if pruned > 1.1 * target else threshold
        assert run.method.threshold == expected
        history.append((threshold, pruned))
    assert history[0][1] == 0 and history[1][0] == 2e-6  # nothing below a tiny H: it doubles
    assert any(pruned > 1.1 * target for _, pruned in history)  # it grew until it prunes too many ...
    reached = next(i for i, (_, pruned) in enumerate(history) if pruned > 1.1 * target)
    assert any(pruned < 0.9 * target for _, pruned in history[reached:])  # ... then oscillates around N_p


def test_pruned_are_the_active_weights_below_the_global_threshold_and_regrowth_follows_survivors():
    run = dsr_run(initial_threshold=0.02)
    run.step()  # step 0: no re-allocation
    threshold = run.method.threshold
    before, magnitudes, after = one_update(run)
    assert active(after) == active(before)  # total exact
    pruned = {name: before[name] & (magnitudes[name] < threshold) for name in before}
    total_pruned = sum(int(p.sum()) for p in pruned.values())
    assert total_pruned == run.method.last_pruned > 0
    survivors = {name: before[name] & ~pruned[name] for name in before}
    surviving = sum(int(s.sum()) for s in survivors.values())
    for name in before:
        assert (after[name] >= survivors[name]).all(), name  # every survivor stays
        grown = after[name] & ~survivors[name]
        assert not (grown & pruned[name]).any(), name  # never at a just-pruned position
        share = total_pruned * int(survivors[name].sum()) / surviving
        assert math.floor(share) <= int(grown.sum()) <= math.ceil(share), name  # ∝ surviving weights
    assert run.method.target_counts == {name: int(kept.sum()) for name, kept in after.items()}


def test_parameters_move_between_layers_with_the_total_exact():
    run = dsr_run(initial_threshold=0.02)
    planned = dict(run.method.target_counts)
    total = sum(planned.values())
    for _ in range(20):
        run.step()
        counts = {name: int(kept.sum()) for name, kept in forward_masks(run.model).items()}
        assert sum(counts.values()) == total
        for name, layer in weight_layers(run.model).items():
            assert (layer.weight.detach()[layer.weight_mask == 0] == 0).all(), name
    assert counts != planned  # the layers' shares changed: re-allocation, not per-layer drop-and-grow


def test_seeded_and_resumable_state():
    first, second, other = dsr_run(seed=0), dsr_run(seed=0), dsr_run(seed=1)
    for _ in range(4):
        first.step(), second.step(), other.step()
    masks_first, masks_second = forward_masks(first.model), forward_masks(second.model)
    assert all(torch.equal(masks_first[name], masks_second[name]) for name in masks_first)
    assert any(not torch.equal(masks_first[name], forward_masks(other.model)[name]) for name in masks_first)
    state = first.method.state_dict()
    fresh = MethodRun("dsr", OPTIONS, model=tiny_mlp(2.0), prepare=False).method
    fresh.load_state_dict(state)
    assert (fresh.threshold, fresh.target_counts, fresh.last_pruned) == (first.method.threshold, first.method.target_counts,
                                                                        first.method.last_pruned)


def test_proportional_counts_respect_capacity_and_sum():
    assert proportional_counts({"a": 3, "b": 1}, 8, {"a": 100, "b": 100}) == {"a": 6, "b": 2}
    assert proportional_counts({"a": 3, "b": 1}, 8, {"a": 5, "b": 100}) == {"a": 5, "b": 3}
    counts = proportional_counts({"a": 1, "b": 1, "c": 1}, 10, {"a": 10, "b": 10, "c": 10})
    assert sum(counts.values()) == 10 and sorted(counts.values()) == [3, 3, 4]
    with pytest.raises(ValueError):
        proportional_counts({"a": 1}, 5, {"a": 4})


def test_a_dense_first_layer_stays_out_of_the_reallocation():
    run = dsr_run(initial_threshold=0.05, dense_layers="first", dense_in_budget=False)
    first = next(iter(weight_layers(run.model)))
    for _ in range(5):
        run.step()
    assert bool(forward_masks(run.model)[first].all())


def test_end_before_begin_is_refused_naming_the_field():
    from bench_powerprop.methods import METHODS
    from bench_powerprop.options import CellFacts, OptionError

    with pytest.raises(OptionError, match=r"^methods\.dsr\.end_step: 10 is before begin_step 50"):
        METHODS.options("dsr").parse({"begin_step": 50, "end_step": 10}, "methods.dsr", CellFacts(steps=100))
