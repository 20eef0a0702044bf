"""The gradient-flow ticket's control (G4: Evci et al. 2022 §4 "scratch") really shares the ticket's mask: GMP's final
mask, on fresh weights, where the ticket has GMP's initial weights. Trained for a few steps from the default config's
gradflow_digits grid, the masks compared tensor by tensor."""

import pytest
import torch

from bench_powerprop.cells import make_cell
from bench_powerprop.config import load_yaml, validate_config
from bench_powerprop.plan import Plan
from bench_powerprop.training.lineage import Inherited
from bench_powerprop.training.trainer import train_cell

from helpers import REPO

EXPERIMENT, SPARSITY = "gradflow_digits", 0.95
GMP = {"cell": {"method": "gmp", "variant": "default"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("controls")
    config = load_yaml(REPO / "configs" / "default.yaml")
    config.update(active_experiments=[EXPERIMENT], results_dir=str(tmp_path / "results"), checkpoint_dir=str(tmp_path / "ckpt"))
    experiment = config["experiments"][EXPERIMENT]
    experiment["train"].update(steps=40, log_every=10, eval_every=20, checkpoint_every=20, gradient_norm_every=20)
    experiment["methods"] = {"gmp": {"begin_step": 5, "end_step": 20, "frequency": 5}}
    cell = {"alpha": [1], "sparsity": [SPARSITY], "seed": [0], "snapshot_steps": [0]}
    experiment["grid"] = [
        {"method": ["gmp"], **cell},
        {"method": ["static"], "variant": ["ticket"], **cell, "init_from": {**GMP, "step": 0},
         "mask_from": {**GMP, "step": "final"}},
        {"method": ["lottery_reinit"], **cell, "mask_from": {**GMP, "step": "final"}},
    ]
    validate_config(config)
    plan = Plan(config)
    for each in sorted(plan.cells, key=lambda c: c.method != "gmp"):
        train_cell(plan.spec(each), plan.run_dir(each), plan.checkpoint_dir(each), progress=False)
    return plan


def start(plan, method, variant="default"):
    each = make_cell(EXPERIMENT, method=method, variant=variant, alpha=1, sparsity=SPARSITY, seed=0)
    return Inherited.load(f"{plan.run_dir(each)}/snapshots/step_{0:08d}.pt", 0)


def final(plan, method):
    each = make_cell(EXPERIMENT, method=method, variant="default", alpha=1, sparsity=SPARSITY, seed=0)
    return Inherited.load(f"{plan.run_dir(each)}/model.pt", "final")


def test_the_ticket_and_its_control_start_from_gmps_final_mask(trained):
    gmp_mask = final(trained, "gmp").mask()
    ticket, control = start(trained, "static", "ticket"), start(trained, "lottery_reinit")
    assert set(gmp_mask) == set(ticket.mask()) == set(control.mask())
    for name, kept in gmp_mask.items():
        assert torch.equal(ticket.mask()[name], kept) and torch.equal(control.mask()[name], kept), name
        assert kept.float().mean() < 0.5  # a sparse mask, not the dense one
    gmp_start = start(trained, "gmp").state_dict
    for name, kept in gmp_mask.items():
        assert torch.equal(ticket.state_dict[name][kept], gmp_start[name][kept]), name  # the ticket: GMP's initial weights
        assert not torch.equal(control.state_dict[name][kept], gmp_start[name][kept]), name  # the control: fresh ones
