"""Lottery tickets and their pruning solution (Evci et al. 2022 §5): θ distance, prediction disagreement and seed-pair
ensemble gains of a real chain (3 seeds, level 0 and 1, both controls) against a hand-written forward pass."""

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


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("solutions")
    cell = {"alpha": [ALPHA], "sparsity": [0], "seed": list(SEEDS)}
    config = lottery_config(tmp_path, grid=[
        {"method": ["lottery"], **cell, "level": [0], "snapshot_steps": [0]},
        {"method": ["lottery"], **cell, "level": [1], "init_from": {"cell": {"level": 0}, "step": 0},
         "mask_from": {"cell": {"level": "previous"}, "step": "final"}},
        {"method": list(CONTROLS), **cell, "level": [1], "mask_from": {"cell": {"method": "lottery"}, "step": "final"}},
    ])
    validate_config(config)
    plan = Plan(config)
    for each in sorted(plan.cells, key=lambda c: (c.level, c.method != "lottery")):
        train_cell(plan.spec(each), plan.run_dir(each), plan.checkpoint_dir(each), progress=False)
    return plan


def cell(method, seed, level=1):
    return make_cell("lottery_digits", method=method, variant="default", alpha=ALPHA, sparsity=0, seed=seed, level=level)


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
    assert len(table) == 3 * len(SEEDS) and set(table["level"]) == {1}
    x, _ = held_out_test_set(chain)
    for seed in SEEDS:
        parent, ticket = saved(chain, cell("lottery", seed, 0)), saved(chain, cell("lottery", seed))
        solution = thetas(parent, ticket.mask())  # level 0's trained θ with the ticket's mask
        predictions = logits_by_hand(solution, parent, x).argmax(1)
        for method in ("lottery", *CONTROLS):
            mine = saved(chain, cell(method, seed))
            own = thetas(mine)
            distance = (sum(((own[n] - solution[n]) ** 2).sum() for n in own) / sum((t**2).sum() for t in solution.values())) ** 0.5
            disagreement = (logits_by_hand(own, mine, x).argmax(1) != predictions).double().mean()
            row = table[(table["method"] == method) & (table["seed"] == seed)].iloc[0]
            assert row["theta_distance"] == pytest.approx(float(distance), rel=1e-5), (method, seed)
            assert row["disagreement"] == pytest.approx(float(disagreement), abs=1e-12), (method, seed)
            assert row["variant"] == "default" and row["alpha"] == ALPHA
    by_method = table.groupby("method")["theta_distance"].mean()
    assert by_method["lottery"] < by_method["lottery_scratch"]  # the ticket ends nearer its pruning solution


def test_ensemble_gains_pair_each_seed_with_the_next_and_match_a_hand_computation(chain):
    table = lottery.ensemble_rows(chain.manifest("lottery_digits"))
    assert len(table) == 4 * len(SEEDS)  # level 0 and the three level-1 methods, one row per seed
    x, y = held_out_test_set(chain)
    for (method, level), group in table.groupby(["method", "level"]):
        assert sorted(group["seed"]) == list(SEEDS)
        for seed in SEEDS:
            partner = SEEDS[(SEEDS.index(seed) + 1) % len(SEEDS)]
            a, b = saved(chain, cell(method, seed, level)), saved(chain, cell(method, partner, level))
            p, q = (logits_by_hand(thetas(s), s, x).softmax(1) for s in (a, b))
            accuracy = [float((probabilities.argmax(1) == y).double().mean()) for probabilities in ((p + q) / 2, p, q)]
            expected = accuracy[0] - (accuracy[1] + accuracy[2]) / 2
            assert group.loc[group["seed"] == seed, "ensemble_gain"].item() == pytest.approx(expected, abs=1e-12)


def test_two_seeds_make_one_pair():
    cells = [{"method": "lottery", "variant": "default", "alpha": 1.0, "level": 1, "seed": seed} for seed in (3, 7)]
    assert [(a["seed"], b["seed"]) for a, b in lottery.seed_pairs(cells)] == [(3, 7)]
    assert lottery.seed_pairs(cells[:1]) == []


def test_the_report_command_writes_both_tables_by_role(chain, tmp_path):
    reports.write_solutions(chain.manifest("lottery_digits"), tmp_path)
    tables = PIPELINES["lottery"].tables
    assert list(pd.read_csv(tmp_path / tables["solutions"]).columns) == lottery.SOLUTION_COLUMNS
    assert list(pd.read_csv(tmp_path / tables["ensembles"]).columns) == lottery.ENSEMBLE_COLUMNS
