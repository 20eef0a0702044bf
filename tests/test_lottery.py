"""Lottery tickets with rewinding: a chain of levels as cells (``level`` axis, ``level: previous`` lineage).

Checked on a real 3-level chain trained on digits: masks nested across levels with the exact counts of
the pruning rule; the kept weights of level ℓ start at exactly level 0's values at the rewind step;
the pruned weights are the smallest trained |θ| of the previous level; the controls have the ticket's
per-layer counts (reinit: its very mask on fresh weights; scratch: another mask); a level killed
mid-training resumes bitwise; the config refuses malformed chains before any job.
"""

import copy

import pytest
import torch

from bench_powerprop import masks
from bench_powerprop.cells import make_cell
from bench_powerprop.config import ConfigError, load_yaml, validate_config
from bench_powerprop.plan import Plan
from bench_powerprop.powerprop import theta_from_phi
from bench_powerprop.training.lineage import Inherited
from bench_powerprop.training.trainer import Trainer, train_cell

from helpers import REPO

STEPS, REWIND = 20, 5
PRUNE, OUTPUT_PRUNE = 0.5, 0.25
ALPHA = 2.0
TICKET = {"cell": {"method": "lottery", "variant": "default"}}


def lottery_config(tmp_path, grid=None) -> dict:
    config = load_yaml(REPO / "configs" / "default.yaml")
    config.update(active_experiments=["lottery_digits"], results_dir=str(tmp_path / "results"), checkpoint_dir=str(tmp_path / "ckpt"))
    experiment = config["experiments"]["lottery_digits"]
    experiment["train"].update(steps=STEPS, log_every=10, eval_every=10, checkpoint_every=10)
    experiment["methods"] = {"lottery": {"prune_fraction": PRUNE, "output_prune_fraction": OUTPUT_PRUNE}}
    experiment["variants"] = {"lottery": {"rewind": {"rewind_step": REWIND}}}
    cell = {"alpha": [ALPHA], "sparsity": [0], "seed": [0]}
    experiment["grid"] = grid or [
        {"method": ["lottery"], **cell, "level": [0], "snapshot_steps": [0, REWIND]},
        {"method": ["lottery"], "variant": ["rewind"], **cell, "level": [1], "snapshot_steps": [0],
         "init_from": {"cell": {"variant": "default", "level": 0}, "step": REWIND},
         "mask_from": {"cell": {"variant": "default", "level": 0}, "step": "final"}},
        {"method": ["lottery"], "variant": ["rewind"], **cell, "level": [2, 3], "snapshot_steps": [0],
         "init_from": {"cell": {"variant": "default", "level": 0}, "step": REWIND},
         "mask_from": {"cell": {"level": "previous"}, "step": "final"}},
        {"method": ["lottery_reinit", "lottery_scratch"], **cell, "level": [3], "snapshot_steps": [0],
         "mask_from": {"cell": {"method": "lottery", "variant": "rewind"}, "step": "final"}},
    ]
    return config


def cell(method="lottery", variant="rewind", level=1):
    return make_cell("lottery_digits", method=method, variant=variant, alpha=ALPHA, sparsity=0, seed=0, level=level)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The whole chain trained once, in lineage order, exactly as the workflow's train jobs would."""
    tmp_path = tmp_path_factory.mktemp("lottery")
    config = lottery_config(tmp_path)
    validate_config(config)
    plan = Plan(config)
    order = sorted(plan.cells, key=lambda c: (c.level, c.method != "lottery"))
    for each in order:
        train_cell(plan.spec(each), plan.run_dir(each), plan.checkpoint_dir(each), progress=False)
    return plan


def saved(plan, each, name="model.pt"):
    return Inherited.load(f"{plan.run_dir(each)}/{name}", "final")


def ticket_mask(plan, level):
    return saved(plan, cell(level=level) if level else cell(variant="default", level=0)).mask()


def test_masks_are_nested_with_the_exact_counts_of_the_pruning_rule(chain):
    previous = None
    for level in (1, 2, 3):
        mask = ticket_mask(chain, level)
        survivors = previous.layer_counts() if previous else {name: kept.numel() for name, kept in mask.items()}
        names = list(mask)
        for name, count in mask.layer_counts().items():
            fraction = OUTPUT_PRUNE if name == names[-1] else PRUNE
            assert count == survivors[name] - round(fraction * survivors[name]), (level, name)
        if previous is not None:
            assert mask.issubset(previous)
        previous = mask


def test_kept_weights_start_at_the_rewound_values(chain):
    rewound = Inherited.load(f"{chain.run_dir(cell(variant='default', level=0))}/snapshots/step_{REWIND:08d}.pt", REWIND).state_dict
    for level in (1, 2, 3):
        start = saved(chain, cell(level=level), f"snapshots/step_{0:08d}.pt")
        mask = start.mask()
        for name, kept in mask.items():
            assert torch.equal(start.state_dict[name][kept], rewound[name][kept]), (level, name)
            assert (start.state_dict[name][~kept] == 0).all()
            bias = name.replace("weight", "bias")
            assert torch.equal(start.state_dict[bias], rewound[bias])


def test_each_level_prunes_the_smallest_trained_weights_of_the_previous_level(chain):
    for level in (2, 3):
        parent = saved(chain, cell(level=level - 1))
        previous, current = parent.mask(), ticket_mask(chain, level)
        for name, theta in parent.thetas(list(previous)).items():
            kept, removed = theta.abs()[current[name]], theta.abs()[previous[name] & ~current[name]]
            assert kept.min() >= removed.max(), (level, name)


def test_controls_have_the_tickets_per_layer_counts(chain):
    ticket = ticket_mask(chain, 3)
    ticket_start = saved(chain, cell(level=3), f"snapshots/step_{0:08d}.pt").state_dict
    reinit = saved(chain, cell("lottery_reinit", "default", 3), f"snapshots/step_{0:08d}.pt")
    scratch = saved(chain, cell("lottery_scratch", "default", 3), f"snapshots/step_{0:08d}.pt")
    assert reinit.mask() == ticket  # the same mask ...
    assert scratch.mask().layer_counts() == ticket.layer_counts() and scratch.mask() != ticket  # ... or the same counts
    for control in (reinit, scratch):
        assert control.mask().layer_density() == ticket.layer_density()
        name = "1.weight"
        kept = control.mask()[name]
        assert not torch.equal(control.state_dict[name][kept], ticket_start[name][kept])  # fresh weights, not the ticket's
        dense_init = theta_from_phi(Inherited.load(f"{chain.run_dir(cell(variant='default', level=0))}/snapshots/step_{0:08d}.pt", 0)
                                    .state_dict[name], ALPHA)
        fresh = theta_from_phi(control.state_dict[name][kept], ALPHA)
        assert fresh.std().item() == pytest.approx(dense_init.std().item(), rel=0.25)  # from the same initialiser


def test_a_killed_level_resumes_bitwise(chain, tmp_path):
    spec = copy.deepcopy(chain.spec(cell(level=2)))
    full = Trainer(spec, tmp_path / "full", progress=False)
    full_metrics = full.run()
    partial = Trainer(spec, tmp_path / "killed", progress=False)
    while partial.step < 13:
        partial.train_step()
    partial.checkpoint()
    del partial  # the process dies here; a new one resumes from the checkpoint
    resumed = Trainer(spec, tmp_path / "killed", progress=False)
    assert resumed.resumed_from == 13
    metrics = resumed.run()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert metrics["test_accuracy"] == full_metrics["test_accuracy"]
    assert masks.forward_mask(resumed.model) == ticket_mask(chain, 2)


def test_run_directories_name_the_level():
    assert cell(level=3).path == "method~lottery/variant~rewind/alpha~2/sparsity~0/seed~0/level~3"
    assert make_cell("x", method="dense", alpha=1, sparsity=0, seed=0).path == "method~dense/variant~default/alpha~1/sparsity~0/seed~0"


BAD_CHAINS = {
    "no level": ([{"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0]}], "a lottery cell needs a level"),
    "previous at level 0": (
        [{"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [0],
          "mask_from": {"cell": {"level": "previous"}, "step": "final"}}], "'previous' needs cells with a level >= 1"),
    "level without lineage": (
        [{"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [0, 1]}], "lottery level 1 needs mask_from"),
    "rewind step mismatch": (
        [{"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [0], "snapshot_steps": [0, 5]},
         {"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [1],
          "init_from": {"cell": {"level": 0}, "step": 5}, "mask_from": {"cell": {"level": "previous"}, "step": "final"}}],
        "init_from.step 5 is not this cell's rewind_step 0"),
    "sparsity set": ([{"method": ["lottery"], "alpha": [1], "sparsity": [0.5], "seed": [0], "level": [0]}],
                     "grid sparsity must be 0"),
    "previous level missing": (
        [{"method": ["lottery"], "alpha": [1], "sparsity": [0], "seed": [0], "level": [2],
          "init_from": {"cell": {"level": 0}, "step": 0}, "mask_from": {"cell": {"level": "previous"}, "step": "final"}}],
        "which is not in the grid"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHAINS))
def test_malformed_chains_fail_before_any_job(case, tmp_path):
    grid, message = BAD_CHAINS[case]
    with pytest.raises(ConfigError, match=message):
        validate_config(lottery_config(tmp_path, grid))
