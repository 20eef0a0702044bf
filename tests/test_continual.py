"""Continual learning (packnet, efficient_packnet) on permuted digits: no forgetting, masks, search, resume.

The central property: after training any later task, evaluating task j with its own mask and
biases gives bitwise the outputs (so exactly the accuracy) it had when task j finished. Runs use
SGD with momentum and weight decay, which would move frozen weights if they were not protected.
"""

import itertools
import json
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from bench_powerprop import masks
from bench_powerprop.cell_spec import CellSpec
from bench_powerprop.config import load_yaml, validate_config
from bench_powerprop.data.permuted import permute
from bench_powerprop.methods import METHODS
from bench_powerprop.methods.efficient_packnet import bisect_keep, last_passing, sparsest_meeting
from bench_powerprop.methods.packnet import share
from bench_powerprop.options import CellFacts, OptionError
from bench_powerprop.plan import Plan
from bench_powerprop.powerprop import phi_from_theta, powerpropify, theta_from_phi, weight_layers
from bench_powerprop.training.context import TrainingContext
from bench_powerprop.training.lineage import Lineage
from bench_powerprop.training.strategy import LocalStrategy
from bench_powerprop.training.trainer import Trainer, train_cell

from helpers import REPO, continual_spec, digits_spec, kill_hard, start_training, train_command, wait_for_checkpoint

TASKS, STEPS = 4, 30
STRESS = {"momentum": 0.9, "weight_decay": 1e-3}


def spec(method, alpha, **options):
    return continual_spec(method, alpha, tasks=TASKS, steps=STEPS, options={"retrain_steps": 10, **options}, **STRESS)


def task_outputs(trainer, task):
    """Logits of task ``task`` (0-based) evaluated with its own mask and biases, on its test split."""
    features, _ = trainer.ctx.tasks[task].splits.split("test")
    view = trainer.method.task_view(trainer.model, task)
    with torch.no_grad():
        return view(permute(features, trainer.ctx.tasks[task].order))


def run_recording_each_task(spec_, directory):
    """Train phase by phase; at every task's end record its outputs and the φ of its mask."""
    trainer = Trainer(spec_, directory, progress=False)
    at_finish = {}
    while trainer.step < trainer.total_steps:
        finished = len(trainer.method.task_masks)
        trainer.advance()
        if len(trainer.method.task_masks) > finished:
            mask = trainer.method.task_masks[finished]
            phi = {name: layer.weight.detach()[mask[name]].clone() for name, layer in weight_layers(trainer.model).items()}
            at_finish[finished] = (task_outputs(trainer, finished), phi)
    return trainer, at_finish


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("method", ["packnet", "efficient_packnet"])
def test_no_forgetting_is_bitwise(method, alpha, tmp_path):
    trainer, at_finish = run_recording_each_task(spec(method, alpha), tmp_path)
    assert sorted(at_finish) == list(range(TASKS))
    for task, (outputs, phi) in at_finish.items():
        assert torch.equal(task_outputs(trainer, task), outputs), f"task {task + 1} forgot"
        mask = trainer.method.task_masks[task]
        for name, layer in weight_layers(trainer.model).items():
            assert torch.equal(layer.weight.detach()[mask[name]], phi[name]), f"task {task + 1}: frozen φ of {name} moved"
    evaluations = trainer.method.evaluations
    assert len(evaluations) == TASKS * (TASKS + 1) // 2  # a lower-triangular matrix
    at_end_of_own_task = {row["evaluated_task"]: row for row in evaluations if row["trained_tasks"] == row["evaluated_task"]}
    for row in evaluations:
        own = at_end_of_own_task[row["evaluated_task"]]
        assert (row["val_accuracy"], row["test_accuracy"]) == (own["val_accuracy"], own["test_accuracy"])
    assert all(row["test_accuracy"] > 0.3 for row in evaluations)  # it learns every task (10 classes: chance 0.1)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_packnet_tasks_claim_disjoint_exact_shares_of_every_layer(alpha, tmp_path):
    trainer = Trainer(spec("packnet", alpha), tmp_path, progress=False)
    trainer.run()
    task_masks = trainer.method.task_masks
    claimed = [task_masks[0]] + [later - earlier for earlier, later in itertools.pairwise(task_masks)]
    for earlier, later in itertools.pairwise(task_masks):
        assert earlier.issubset(later)  # task t computes with the weights of tasks 1..t
    for i, first in enumerate(claimed):
        for second in claimed[i + 1:]:
            assert (first & second).count() == 0
        for name, count in first.layer_counts().items():
            assert count == share(first[name].numel(), i, TASKS), (i, name)
    assert task_masks[-1].density() == 1.0  # the last task takes what is left


def test_efficient_packnet_masks_may_overlap_and_search_the_levels(tmp_path):
    trainer = Trainer(spec("efficient_packnet", 2.0), tmp_path, progress=False)
    metrics = trainer.run()
    task_masks = trainer.method.task_masks
    reused = [(task_masks[later] & task_masks[earlier]).count() for later in range(TASKS) for earlier in range(later)]
    assert any(reused), "no task reused an earlier task's weight"
    levels = sorted(METHODS.options("efficient_packnet")().keep_levels, reverse=True)
    for record, mask in zip(metrics["continual"]["task_capacity"], task_masks):
        tried = record["search"]
        assert [entry["keep"] for entry in tried] == levels[: len(tried)]  # from the densest level down
        passed = [entry for entry in tried if entry["val_accuracy"] > record["threshold"]]
        assert tried[: len(passed)] == passed  # every level before the first failure passed (strictly)
        assert record["keep"] == (passed[-1]["keep"] if passed else 1.0)
        assert len(passed) == len(tried) or tried[len(passed)]["val_accuracy"] <= record["threshold"]
        assert record["capacity"] == mask.density()
        assert mask.count() == int(mask.numel() * record["keep"])  # ⌊s·dim(φ)⌋ over every weight together


def test_sequential_search_stops_at_the_first_failure_and_keeps_the_last_passing_level():
    accuracy = {0.01: 0.5, 0.05: 0.91, 0.1: 0.8, 0.5: 0.95, 1.0: 0.97}
    assert last_passing([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.9) == (0.5, [{"keep": 0.5, "val_accuracy": 0.95},
                                                                                     {"keep": 0.1, "val_accuracy": 0.8}])
    assert last_passing([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.2)[0] == 0.01
    assert last_passing([0.5, 0.1], accuracy.__getitem__, 0.96)[0] == 1.0  # the densest level fails: every weight
    assert last_passing([0.5, 0.1], accuracy.__getitem__, 0.95)[0] == 1.0  # 0.95 is not > 0.95 (Algorithm 1's strict >)
    assert last_passing([0.5, 0.1], accuracy.__getitem__, 0.95, strict=False)[0] == 0.5


def test_search_takes_the_sparsest_level_meeting_the_threshold_even_if_accuracy_is_not_monotone():
    accuracy = {0.01: 0.5, 0.05: 0.91, 0.1: 0.8, 0.5: 0.95, 1.0: 0.97}
    assert sparsest_meeting([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.9)[0] == 0.05
    assert sparsest_meeting([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.96)[0] == 1.0  # none meets: every weight
    assert sparsest_meeting([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.91)[0] == 0.5  # strict: 0.91 does not pass
    assert sparsest_meeting([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.91, strict=False)[0] == 0.05
    keep, tried = sparsest_meeting([0.5, 0.1, 0.05, 0.01], accuracy.__getitem__, 0.2)
    assert keep == 0.01 and len(tried) == 1


def test_bisection_finds_the_sparsest_fraction_of_a_monotone_accuracy():
    keep, _ = bisect_keep(0.001, lambda level: float(level >= 0.037), 0.5, steps=30)
    assert keep == pytest.approx(0.037, rel=1e-6) and keep >= 0.037
    assert bisect_keep(0.001, lambda level: 1.0, 0.5, steps=5) == (0.001, [{"keep": 0.001, "val_accuracy": 1.0}])


class ToyTask:
    """Three kinds of points whose labels need 1, 2 or all of the sign-symmetric weights u = (2, 0.5, 0.1)."""

    input_shape, num_classes, train_size = (3,), 2, 4

    def __init__(self):
        points = [(1.0, 0.0, 0.0), (0.1, -1.0, 0.0), (0.1, -1.0, 0.0), (0.1, -0.41, 1.0)]
        self.features = torch.tensor(points)
        self.labels = (self.features @ torch.tensor([2.0, 0.5, 0.1]) < 0).long()  # (0, 1, 1, 0)

    def accuracy(self, model, split):
        with torch.no_grad():
            return float((model(self.features).argmax(1) == self.labels).float().mean())


def toy_method_and_context(model, alpha, options):
    facts = CellFacts(steps=1, alpha=alpha, tasks=1)
    method = METHODS.get("efficient_packnet")(METHODS.options("efficient_packnet").parse(options, "m", facts), facts, 0)
    ctx = TrainingContext(model, torch.optim.SGD(model.parameters(), lr=0.1), CellSpec.from_dict(digits_spec(seed=0, batch_size=4)),
                          [ToyTask()], nn.functional.cross_entropy, None, Lineage(), LocalStrategy(torch.device("cpu")),
                          method.phases())
    method.setup(ctx)
    return method, ctx


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("search", ["sequential", "grid"])
@pytest.mark.parametrize("gamma, expected_keep, expected_kept", [(0.4, 1 / 6, 1), (0.7, 4 / 6, 4), (0.8, 1.0, 6),
                                                                 (0.75, 1.0, 6)])  # 0.75·1 is not > 0.75
def test_efficient_packnet_picks_the_known_sparsest_mask_on_a_toy_model(alpha, search, gamma, expected_keep, expected_kept):
    # Top-|θ| masks of the 2×3 weights keep 1 or 2 weights (±2: accuracy 2/4), 4 (±2, ±0.5: 3/4) or all 6 (4/4).
    model = powerpropify(nn.Sequential(nn.Linear(3, 2, bias=False)), alpha)
    with torch.no_grad():
        model[0].weight.copy_(phi_from_theta(torch.tensor([[2.0, 0.5, 0.1], [-2.0, -0.5, -0.1]]), alpha))
    method, ctx = toy_method_and_context(model, alpha, {"gamma": gamma, "keep_levels": [1 / 6, 2 / 6, 4 / 6, 1.0], "search": search})
    mask, record = method.choose_mask(ctx)
    assert record["dense_val_accuracy"] == 1.0
    assert record["keep"] == pytest.approx(expected_keep) and mask.count() == expected_kept
    accuracies = {1 / 6: 0.5, 2 / 6: 0.5, 4 / 6: 0.75, 1.0: 1.0}
    assert all(accuracies[tried["keep"]] == tried["val_accuracy"] for tried in record["search"])


@pytest.mark.parametrize("keep", [0.1, 0.37, 0.5])
def test_efficient_packnet_takes_the_top_floor_s_n_of_all_weights_together(keep):
    """Algorithm 1's TopK(φ, ⌊s·dim(φ)⌋): the ⌊s·N⌋ largest |φ| of the whole network, counted and ranked here in numpy."""
    torch.manual_seed(4)
    model = powerpropify(nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 2)), 2.0)
    method, ctx = toy_method_and_context(model, 2.0, {"gamma": 0.01, "keep_levels": [keep]})
    mask, record = method.choose_mask(ctx)
    phis = np.concatenate([layer.weight.detach().abs().numpy().reshape(-1) for layer in weight_layers(model).values()])
    count = int(np.floor(keep * phis.size))  # N = 35: 3, 12, 17
    assert record["keep"] == keep and mask.count() == count
    threshold = np.sort(phis)[::-1][count - 1]
    for name, layer in weight_layers(model).items():
        assert torch.equal(mask[name], layer.weight.detach().abs() >= float(threshold)), name


def test_efficient_packnet_per_layer_option_keeps_the_output_factor():
    torch.manual_seed(4)
    model = powerpropify(nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 2)), 1.0)
    options = {"gamma": 0.01, "keep_levels": [0.25], "scope": "layerwise", "last_layer_keep_factor": 2.0, "count": "exact"}
    method, ctx = toy_method_and_context(model, 1.0, options)
    mask, _ = method.choose_mask(ctx)
    assert mask.layer_counts() == {"0.weight": round(0.25 * 30), "2.weight": round(0.5 * 20)}


def test_efficient_packnet_global_scope_refuses_an_output_factor():
    with pytest.raises(OptionError, match=r"^m\.last_layer_keep_factor: scope 'global' ranks the output layer"):
        METHODS.options("efficient_packnet").parse({"last_layer_keep_factor": 2.0}, "m")


def unused_after_the_first_task(trainer):
    """φ of every layer at the start and, once the first task's mask is chosen, the weights no task uses."""
    initial = {name: layer.weight.detach().clone() for name, layer in weight_layers(trainer.model).items()}
    while not trainer.method.task_masks:
        trainer.advance()
    unused = ~trainer.method.used(trainer.model)
    assert unused.count() > 0
    return initial, unused


@pytest.mark.parametrize("method, alpha", [("efficient_packnet", 1.0), ("efficient_packnet", 2.0), ("packnet", 2.0)])
def test_unused_weights_are_reinitialised_not_zero(method, alpha, tmp_path):
    trainer = Trainer(spec(method, alpha), tmp_path / "run", progress=False)
    initial, unused = unused_after_the_first_task(trainer)
    for name, layer in weight_layers(trainer.model).items():
        phi = layer.weight.detach()[unused[name]]
        theta0 = theta_from_phi(initial[name][unused[name]], alpha)
        assert torch.equal(phi, phi_from_theta(theta0, alpha)), name  # θ₀ again
        assert (phi != 0).all(), name


def test_packnet_trains_free_weights_from_zero_at_alpha_one_as_the_reference(tmp_path):
    trainer = Trainer(spec("packnet", 1.0), tmp_path, progress=False)
    _, unused = unused_after_the_first_task(trainer)
    assert all((layer.weight.detach()[unused[name]] == 0).all() for name, layer in weight_layers(trainer.model).items())


def test_keep_leaves_the_unused_weights_as_training_left_them(tmp_path):
    """reinit: keep (the control of the report's "re-initialising helps"): after the first task's mask is chosen the
    unused weights hold trained values, neither θ₀ (the default's, test above) nor zero."""
    trainer = Trainer(spec("efficient_packnet", 1.0, reinit="keep"), tmp_path / "run", progress=False)
    initial, unused = unused_after_the_first_task(trainer)
    for name, layer in weight_layers(trainer.model).items():
        phi = layer.weight.detach()[unused[name]]
        assert (phi != initial[name][unused[name]]).float().mean() > 0.9, name  # moved by training, not reset
        assert (phi != 0).all(), name


def test_efficient_packnet_refuses_zero_reinitialisation():
    with pytest.raises(OptionError, match=r"^m\.reinit: must be one of \['initial', 'random', 'keep'\]"):
        METHODS.options("efficient_packnet").parse({"reinit": "zeros"}, "m")


@pytest.mark.parametrize("method, options", [("packnet", {"scorer": "random"}),
                                             ("efficient_packnet", {"retrain_steps": 10, "search": "binary"})])
def test_a_run_killed_between_tasks_or_inside_one_resumes_bitwise(method, options, tmp_path):
    cell = spec(method, 2.0, **options)
    reference = Trainer(cell, tmp_path / "reference", progress=False)
    expected = reference.run()

    between = Trainer(cell, tmp_path / "between", progress=False)
    while between.ctx.phase_index < 2:  # task 1 and its retraining done: the boundary checkpoint is the newest
        between.advance()
    inside = Trainer(cell, tmp_path / "inside", progress=False)
    while inside.step < 2 * (STEPS + 10) + STEPS // 2:  # half-way through task 3's training phase
        inside.advance()
    inside.checkpoint()
    for name, stopped_at in (("between", between.step), ("inside", inside.step)):  # the processes are gone; start again
        resumed = Trainer(cell, tmp_path / name, progress=False)
        assert resumed.resumed_from == stopped_at
        metrics = resumed.run()
        assert metrics["continual"] == expected["continual"], name
        for key, value in reference.model.state_dict().items():
            assert torch.equal(resumed.model.state_dict()[key], value), (name, key)


def test_the_final_model_is_the_last_task_with_its_mask(tmp_path):
    trainer = Trainer(spec("efficient_packnet", 2.0), tmp_path, progress=False)
    metrics = trainer.run()
    last = [row for row in metrics["continual"]["evaluations"] if row["trained_tasks"] == TASKS][-1]
    assert last["evaluated_task"] == TASKS and metrics["test_accuracy"] == last["test_accuracy"]
    assert masks.forward_mask(trainer.model) == trainer.method.task_masks[-1]


@pytest.mark.timeout(300)
def test_a_continual_job_killed_hard_at_a_task_boundary_reruns_to_the_same_result(tmp_path):
    cell = continual_spec("efficient_packnet", 2.0, tasks=4, steps=400, options={"retrain_steps": 50}, checkpoint_every=10_000)
    reference = train_cell(cell, tmp_path / "reference", tmp_path / "reference_ckpt", progress=False)
    process = start_training(cell, tmp_path / "run", tmp_path / "ckpt")
    wait_for_checkpoint(tmp_path / "ckpt", process, min_count=1)  # only task boundaries are checkpointed here
    kill_hard(process)
    assert not (tmp_path / "run" / "metrics.json").exists(), "killed too late: training already finished"
    rerun = subprocess.run(train_command(cell, tmp_path / "run", tmp_path / "ckpt"), capture_output=True, text=True, check=True)
    assert "resumed from checkpoint" in rerun.stderr
    resumed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert resumed["resumed_from_step"] % 450 in (0, 400)  # a phase boundary
    assert resumed["continual"] == reference["continual"] and resumed["test_accuracy"] == reference["test_accuracy"]


def test_the_reports_epn_setting_is_declared_and_active():
    """continual_mnist_epn: the reproduction report's S7 (EPN, 3 permuted-MNIST tasks, one rate 0.2, α 1 vs 1.5), 5 seeds."""
    config = load_yaml(REPO / "configs" / "default.yaml")
    assert "continual_mnist_epn" in config["active_experiments"]
    config["active_experiments"] = ["continual_mnist_epn"]
    validate_config(config)
    plan = Plan(config)
    cells = [cell for cell in plan.cells if cell.experiment == "continual_mnist_epn" and cell.variant == "default"]
    assert {cell.method for cell in cells} == {"efficient_packnet"} and len(cells) == 10
    controls = [cell for cell in plan.cells if cell.variant == "no_reinit"]  # S10's control: α = 1, 5 seeds
    assert {float(cell.alpha) for cell in controls} == {1.0} and len(controls) == 5
    assert plan.spec(controls[0])["method_options"]["reinit"] == "keep"
    assert {float(cell.alpha) for cell in cells} == {1.0, 1.5} and {cell.seed for cell in cells} == set(range(5))
    spec = plan.spec(cells[0])
    assert spec["data"]["name"] == "permuted" and spec["data"]["base"]["name"] == "mnist5k" and spec["data"]["tasks"] == 3
    options = spec["method_options"]
    assert options["keep_levels"] == [0.2] and options["scope"] == "global" and options["count"] == "reference"
    assert options["search"] == "sequential" and options["strict"] is True
