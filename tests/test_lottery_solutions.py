"""Lottery tickets and their pruning solution (Evci et al. 2022 §4): θ distance, prediction disagreement and the ensemble
gains of two solutions of one start (tickets of one pruning solution, scratch runs of one mask) of a real chain (3 seeds,
level 0 and 1, both controls, replicate 1 of the ticket and of the reinit control) against a hand-written forward pass."""

import pandas as pd
import pytest
import torch
from test_lottery import ALPHA, lottery_config

from bench_powerprop.cells import make_cell
from bench_powerprop.config import validate_config
from bench_powerprop.data.tasks import build_task
from bench_powerprop.pipelines import PIPELINES
from bench_powerprop.plan import Plan
from bench_powerprop.powerprop import theta_from_phi
from bench_powerprop.reporting import lottery, reports
from bench_powerprop.training.lineage import Inherited
from bench_powerprop.training.trainer import train_cell

SEEDS = (0, 1, 2)
CONTROLS = ("lottery_reinit", "lottery_scratch")
REPLICATE = "replicate"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("solutions")
    cell = {"alpha": [ALPHA], "sparsity": [0], "seed": list(SEEDS)}
    config = lottery_config(tmp_path, grid=[
        {"method": ["lottery"], **cell, "level": [0], "snapshot_steps": [0]},
        {"method": ["lottery"], "variant": ["default", REPLICATE], **cell, "level": [1], "snapshot_steps": [0],
         "init_from": {"cell": {"variant": "default", "level": 0}, "step": 0},
         "mask_from": {"cell": {"variant": "default", "level": "previous"}, "step": "final"}},
        {"method": list(CONTROLS), **cell, "level": [1], "snapshot_steps": [0],
         "mask_from": {"cell": {"method": "lottery", "variant": "default"}, "step": "final"}},
        {"method": ["lottery_reinit"], "variant": [REPLICATE], **cell, "level": [1], "snapshot_steps": [0],
         "mask_from": {"cell": {"method": "lottery", "variant": "default"}, "step": "final"}},
    ])
    config["experiments"]["lottery_digits"]["variants"] = {method: {REPLICATE: {"replicate": 1}}
                                                           for method in ("lottery", "lottery_reinit")}
    validate_config(config)
    plan = Plan(config)
    for each in sorted(plan.cells, key=lambda c: (c.level, c.method != "lottery")):
        train_cell(plan.spec(each), plan.run_dir(each), plan.checkpoint_dir(each), progress=False)
    return plan


def cell(method, seed, level=1, variant="default"):
    return make_cell("lottery_digits", method=method, variant=variant, alpha=ALPHA, sparsity=0, seed=seed, level=level)


def saved(plan, each):
    return Inherited.load(f"{plan.run_dir(each)}/model.pt", "final")


def layer_names(state):
    return [key for key in state.state_dict if key.endswith(".weight")]


def thetas(state, mask=None):
    """θ of every weight layer (masked φ is zero in a saved model), times ``mask`` when given."""
    return {name: theta_from_phi(state.state_dict[name], ALPHA) * (1 if mask is None else mask[name])
            for name in layer_names(state)}


def logits_by_hand(weights, state, x):
    names = layer_names(state)
    for i, name in enumerate(names):
        x = x @ weights[name].T + state.state_dict[name.replace("weight", "bias")]
        if i < len(names) - 1:
            x = torch.relu(x)
    return x


def held_out_test_set(plan):
    return build_task(plan.spec(cell("lottery", 0))["data"]).splits.split("test")


def test_solution_distances_and_disagreement_match_a_hand_computation(chain):
    table = lottery.solution_rows(chain.manifest("lottery_digits"))
    assert len(table) == 5 * len(SEEDS) and set(table["level"]) == {1}
    x, _ = held_out_test_set(chain)
    for seed in SEEDS:
        parent, ticket = saved(chain, cell("lottery", seed, 0)), saved(chain, cell("lottery", seed))
        solution = thetas(parent, ticket.mask())  # level 0's trained θ with the ticket's mask
        predictions = logits_by_hand(solution, parent, x).argmax(1)
        for method, variant in [("lottery", "default"), *((control, "default") for control in CONTROLS),
                                ("lottery", REPLICATE), ("lottery_reinit", REPLICATE)]:
            mine = saved(chain, cell(method, seed, variant=variant))
            own = thetas(mine)
            distance = (sum(((own[n] - solution[n]) ** 2).sum() for n in own) / sum((t**2).sum() for t in solution.values())) ** 0.5
            disagreement = (logits_by_hand(own, mine, x).argmax(1) != predictions).double().mean()
            row = table[(table["method"] == method) & (table["variant"] == variant) & (table["seed"] == seed)].iloc[0]
            assert row["theta_distance"] == pytest.approx(float(distance), rel=1e-5), (method, seed)
            assert row["disagreement"] == pytest.approx(float(disagreement), abs=1e-12), (method, seed)
            assert row["alpha"] == ALPHA
    by_method = table.groupby("method")["theta_distance"].mean()
    assert by_method["lottery"] < by_method["lottery_scratch"]  # the ticket ends nearer its pruning solution


def test_a_replicate_shares_its_start_and_only_its_start(chain):
    """The ticket's replicate: the ticket's mask and initial weights, another batch order; the reinit control's
    replicate: the ticket's mask, other fresh weights, another batch order."""
    for seed in SEEDS:
        ticket = saved(chain, cell("lottery", seed))
        starts = {(method, variant): Inherited.load(f"{chain.run_dir(cell(method, seed, variant=variant))}/snapshots/"
                                                    f"step_{0:08d}.pt", 0)
                  for method in ("lottery", "lottery_reinit") for variant in ("default", REPLICATE)}
        for (method, variant), state in starts.items():
            assert state.mask() == ticket.mask(), (method, variant, seed)  # one mask for all four
        names = layer_names(ticket)
        same = starts[("lottery", "default")].state_dict, starts[("lottery", REPLICATE)].state_dict
        assert all(torch.equal(same[0][name], same[1][name]) for name in names)  # two tickets: one start
        fresh = starts[("lottery_reinit", "default")].state_dict, starts[("lottery_reinit", REPLICATE)].state_dict
        assert not torch.equal(fresh[0][names[0]], fresh[1][names[0]])  # two scratch runs: two draws
        assert not torch.equal(fresh[0][names[0]], same[0][names[0]])
        finals = [saved(chain, cell("lottery", seed, variant=variant)).state_dict[names[0]] for variant in ("default", REPLICATE)]
        assert not torch.equal(*finals)  # the same start trained on another batch order


def test_ensemble_gains_pair_the_two_replicates_of_one_start_and_match_a_hand_computation(chain):
    table = lottery.ensemble_rows(chain.manifest("lottery_digits"))
    assert sorted(set(table["method"])) == ["lottery", "lottery_reinit"] and set(table["variant"]) == {"default"}
    x, y = held_out_test_set(chain)
    for method, group in table.groupby("method"):
        assert sorted(group["seed"]) == list(SEEDS)  # one row per seed: disjoint pairs
        for seed in SEEDS:
            a, b = (saved(chain, cell(method, seed, variant=variant)) for variant in ("default", REPLICATE))
            p, q = (logits_by_hand(thetas(s), s, x).softmax(1) for s in (a, b))
            accuracy = [float((probabilities.argmax(1) == y).double().mean()) for probabilities in ((p + q) / 2, p, q)]
            expected = accuracy[0] - (accuracy[1] + accuracy[2]) / 2
            assert group.loc[group["seed"] == seed, "ensemble_gain"].item() == pytest.approx(expected, abs=1e-12)


def test_replicate_pairs_match_every_option_but_the_replicate():
    cells = [{"method": "lottery", "variant": variant, "alpha": 1.0, "level": 1, "seed": seed}
             for variant in ("default", "replicate", "rewind") for seed in (3, 7)]
    options = {"lottery": {"default": {"rewind_step": 0, "replicate": 0}, "replicate": {"rewind_step": 0, "replicate": 1},
                           "rewind": {"rewind_step": 20, "replicate": 0}}}
    pairs = lottery.replicate_pairs(cells, options)
    assert [(a["variant"], b["variant"], a["seed"], b["seed"]) for a, b in pairs] == [
        ("default", "replicate", 3, 3), ("default", "replicate", 7, 7)]  # the rewind tickets start elsewhere: no partner
    assert lottery.replicate_pairs(cells[:2], options) == []


def test_the_report_command_writes_both_tables_by_role(chain, tmp_path):
    reports.write_solutions(chain.manifest("lottery_digits"), tmp_path)
    tables = PIPELINES["lottery"].tables
    assert list(pd.read_csv(tmp_path / tables["solutions"]).columns) == lottery.SOLUTION_COLUMNS
    assert list(pd.read_csv(tmp_path / tables["ensembles"]).columns) == lottery.ENSEMBLE_COLUMNS
