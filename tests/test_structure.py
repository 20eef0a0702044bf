"""Mask structure (unstructured, N:M, channel, block) through the mask type and every registered method."""

import pytest
import torch

from bench_powerprop import masks
from bench_powerprop.config import ConfigError, check_structure
from bench_powerprop.methods import METHODS
from bench_powerprop.options import CellFacts, OptionError
from bench_powerprop.structure import KINDS, UNSTRUCTURED, parse_structure
from tests.method_harness import MethodRun, batch, tiny_mlp

STRUCTURES = {"unstructured": UNSTRUCTURED, "n_of_m": parse_structure({"n_of_m": {"n": 2, "m": 4}}),
              "channel": parse_structure("channel"), "block": parse_structure({"block": {"rows": 2, "cols": 4}})}
#: the sparsity each structure is run at: 2:4 keeps exactly half of a layer
SPARSITY = {"unstructured": 0.75, "n_of_m": 0.5, "channel": 0.75, "block": 0.75}
#: options that make the methods update their masks within 25 steps, on the harness's data-free context
OPTIONS = {"gmp": {"frequency": 5, "begin_step": 0, "end_step": 20}, "pai": {"scorer": "snip", "scope": "layerwise"},
           "rigl": {"update_every": 4, "drop_fraction": 0.5}, "set": {"update_every": 4, "drop_fraction": 0.5}}


def _declared():
    return [(name, kind) for name in METHODS.names() for kind in KINDS if kind in METHODS.get(name).structures]


def _refused():
    return [(name, kind) for name in METHODS.names() for kind in KINDS if kind not in METHODS.get(name).structures]


def _group_counts(kept, structure):
    return masks.grouped(kept, structure).sum(1)


def assert_structured(mask, structure):
    """Every layer keeps whole groups (channel, block) or n of each m (N:M), or is entirely dense."""
    for name, kept in mask.items():
        if kept.all() or structure.unstructured:
            continue
        counts = _group_counts(kept, structure)
        size = masks.grouped(kept, structure).shape[1]
        allowed = {structure.n, size} if structure.kind == "n_of_m" else {0, size}
        assert set(counts.tolist()) <= allowed, (name, structure.label(), counts.tolist())


#: the lottery pipeline needs a parent cell (lineage): its levels are tested on their own below
LINEAGE = ("lottery", "lottery_reinit", "lottery_scratch")


@pytest.mark.parametrize("name, kind", [case for case in _declared() if case[1] != "unstructured" and case[0] not in LINEAGE
                                        and METHODS.get(case[0]).sparse])
def test_every_mask_update_keeps_the_structure_and_the_final_counts_are_exact(name, kind):
    structure = STRUCTURES[kind]
    run = MethodRun(name, OPTIONS.get(name), sparsity=SPARSITY[kind], steps=25, structure=structure, prepare=False)
    # the harness has no dataset: pruning at init scores on batches of its own random inputs
    run.ctx.scoring_batches = lambda count, size=None, task_index=None: [batch(seed=200 + i) for i in range(count)]
    run.method.prepare(run.ctx)
    seen, distinct = 0, []
    for _ in range(25):
        run.step()
        mask = masks.forward_mask(run.model)
        if mask is not None:
            assert_structured(mask, structure)
            seen += 1
            if not distinct or mask != distinct[-1]:
                distinct.append(mask)
    final = masks.forward_mask(run.model)
    if name in ("rigl", "set"):  # groups were dropped and grown, as units
        assert len(distinct) > 1
    assert seen and final.layer_counts() == run.method.target_counts
    numels = {name: layer.numel() for name, layer in final.items()}
    output = list(numels)[-1]
    for layer, count in final.layer_counts().items():
        if kind == "n_of_m":  # 2:4 keeps exactly half of a layer, or all of a layer ERK leaves dense
            assert count == numels[layer] // 2 or (name == "static" and count == numels[layer])
        elif kind in ("channel", "block") and layer == output:
            assert count == numels[layer]
        if kind == "channel" and layer != output:  # whole rows: round(0.25 · outputs) of them (ERK/uniform aside)
            assert count % final[layer].shape[1] == 0


@pytest.mark.parametrize("name, kind", _refused())
def test_a_method_refuses_a_structure_it_does_not_declare_in_one_line(name, kind):
    cell = type("Cell", (), {"method": name, "sparsity": 0.5, "path": "cell"})()
    with pytest.raises(ConfigError) as error:
        check_structure(METHODS.get(name), cell, STRUCTURES[kind], "experiments.x.structure")
    assert "\n" not in str(error.value) and str(error.value).startswith("experiments.x.structure: method")


def test_n_of_m_cannot_be_asked_for_below_n_over_m():
    cell = type("Cell", (), {"method": "gmp", "sparsity": 0.9, "path": "gmp/a1/s0.9/seed0"})()
    with pytest.raises(ConfigError, match=r"keeps at least 0\.5 of each layer"):
        check_structure(METHODS.get("gmp"), cell, STRUCTURES["n_of_m"], "experiments.x.structure")


def test_two_of_four_keeps_the_two_largest_of_every_four_consecutive_inputs():
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.1, 0.4, 0.3, 0.2]])
    kept = masks.select_top(scores, 4, STRUCTURES["n_of_m"])
    assert kept.tolist() == [[True, False, True, False, False, True, True, False]]
    # above n/m, the groups that lose the least score are the ones reduced
    assert masks.select_top(scores, 6, STRUCTURES["n_of_m"]).tolist() == [[True] * 4 + [False, True, True, False]]


def test_n_of_m_groups_a_convolution_along_its_input_channels_at_each_kernel_position():
    weight = torch.arange(2 * 4 * 3 * 3, dtype=torch.float).reshape(2, 4, 3, 3)
    groups = masks.grouped(weight, STRUCTURES["n_of_m"])
    assert groups.shape == (2 * 9, 4) and groups[0].tolist() == weight[0, :, 0, 0].tolist()
    assert torch.equal(masks.ungrouped(groups, weight.shape, STRUCTURES["n_of_m"]), weight)


@pytest.mark.parametrize("kind", ["channel", "block"])
def test_channel_and_block_keep_the_groups_with_the_largest_mean_score(kind):
    structure = STRUCTURES[kind]
    scores = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    groups = masks.grouped(scores, structure)
    kept = masks.select_top(scores, 2 * groups.shape[1], structure)
    best = set(torch.topk(groups.mean(1), 2).indices.tolist())
    assert {i for i, row in enumerate(masks.grouped(kept, structure)) if row.all()} == best
    assert int(kept.sum()) == 2 * groups.shape[1]


def test_the_mask_type_refuses_a_layer_that_breaks_its_structure():
    three_of_four = torch.tensor([[True, True, True, False]])
    with pytest.raises(ValueError, match="mask layer fc: 1 of its 1 2:4 groups keep neither 2 nor all 4"):
        masks.Mask({"fc": three_of_four}, STRUCTURES["n_of_m"])
    with pytest.raises(ValueError, match="channel groups"):
        masks.Mask({"fc": torch.tensor([[True, False], [False, False]])}, STRUCTURES["channel"])
    masks.Mask({"fc": torch.ones(2, 4, dtype=torch.bool)}, STRUCTURES["n_of_m"])  # a dense layer fits every structure


def test_unstructured_prune_and_random_masks_are_the_previous_code_s_bit_for_bit():
    model = tiny_mlp()
    scores = {name: layer.weight.detach().abs() for name, layer in masks.weight_layers(model).items()}
    assert masks.prune(scores, 0.3, "layerwise", 2.0) == masks.keep_fractions(
        scores, masks.layer_keep_fractions(list(scores), 0.3, 2.0))
    shapes = masks.layer_shapes(model)
    counts = dict.fromkeys(shapes, 7)
    drawn = masks.random_mask(shapes, counts, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    for name, shape in shapes.items():
        expected = torch.zeros(shape[0] * shape[1], dtype=torch.bool)
        expected[torch.randperm(shape[0] * shape[1], generator=generator)[:7]] = True
        assert torch.equal(drawn[name], expected.view(shape))


def test_structure_is_parsed_with_one_line_errors():
    assert parse_structure({"n_of_m": {"n": 2, "m": 4}}).label() == "2:4"
    assert parse_structure(None) is UNSTRUCTURED
    for bad, field in [({"n_of_m": {"n": 4, "m": 4}}, "s.n_of_m.n"), ({"block": {"rows": 2}}, "s.block"), ("rows", "s")]:
        with pytest.raises(ValueError, match=f"^{field}: "):
            parse_structure(bad, "s")


@pytest.mark.parametrize("options, field", [({"scorer": "synflow", "scope": "layerwise"}, "scorer"),
                                            ({"scorer": "snip"}, "scope")])
def test_pruning_at_init_under_a_structure_needs_a_one_shot_scorer_and_layerwise_scope(options, field):
    facts = CellFacts(0.5, 10, 1.0, structure=STRUCTURES["channel"])
    with pytest.raises(OptionError, match=rf"^methods\.pai\.{field}: "):
        METHODS.options("pai").parse(options, "methods.pai", facts)


def test_structure_enters_the_specs_of_the_experiments_that_declare_it_and_no_other():
    from bench_powerprop.config import load_configs, validate_config
    from bench_powerprop.plan import Plan

    from conftest import REPO

    config = load_configs([REPO / "configs" / "default.yaml", REPO / "configs" / "structured_sparse.yaml"])
    validate_config(config)
    plan = Plan(config)
    declared = {cell.experiment: plan.spec(cell).get("structure") for cell in plan.cells}
    assert declared == {"sparse_digits_2of4": {"n_of_m": {"n": 2, "m": 4}}, "sparse_digits_channel": "channel"}
    default = Plan(load_configs([REPO / "configs" / "default.yaml"]))
    assert not any("structure" in default.spec(cell) for cell in default.cells)  # unstructured: specs and hashes as before


@pytest.mark.parametrize("kind", ["n_of_m", "channel", "block"])
def test_lottery_levels_prune_whole_groups_of_the_survivors(kind):
    from bench_powerprop.training.lineage import Inherited

    structure = STRUCTURES[kind]
    model = tiny_mlp(alpha=1.0)
    method_class = METHODS.get("lottery")
    facts = CellFacts(0.0, 10, 1.0, structure=structure)
    options = method_class.Options.parse({"prune_fraction": 0.3, "output_prune_fraction": 0.3}, "methods.lottery", facts)
    lottery = method_class(options, facts, 0)
    previous = None
    for _ in range(4):
        if previous is not None:
            masks.install(model, previous)
        mask = lottery.prune_further(model, Inherited(model.state_dict(), 1.0, "final"))
        assert_structured(mask, structure)
        if previous is not None:
            assert mask.issubset(previous) and mask.count() <= previous.count()
        previous = mask
    assert previous.count() < previous.numel()
    if kind == "n_of_m":  # four levels of 30 % reduce every group to 2 of 4: the floor of 2:4
        assert all(count == masks.layer_shapes(model)[name][0] * masks.layer_shapes(model)[name][1] // 2
                   for name, count in previous.layer_counts().items())
