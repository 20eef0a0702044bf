"""The adaptive-α controller and the ``adaptive_alpha`` method: the update rule, θ kept across a change, logging, resume."""

import pytest
import torch

from bench_powerprop.adaptive_alpha import AlphaController
from bench_powerprop.methods.adaptive_alpha import change_alpha, fraction_below
from bench_powerprop.powerprop import effective_weights, reparameterise, weight_layers
from bench_powerprop.training.checkpointing import load_trained_model
from bench_powerprop.training.trainer import Trainer, train_cell

from helpers import digits_spec
from method_harness import batch, tiny_mlp

FAST = {"every_epochs": 2, "steps_per_epoch": 5, "max_alpha": 4.0}


def test_controller_follows_the_rule_for_a_hand_written_sequence():
    controller = AlphaController(2.0, cr=1.5, cd=0.1)
    sparsities = [0.10, 0.20, 0.20, 0.15, 0.30, 0.30, 0.10, 0.40]
    # first call: geometric; equal counts as not falling; a fall divides α − 1 by cr and ends the initial phase,
    # after which growth is additive (+cd).
    expected = [2.5, 3.25, 4.375, 3.25, 3.35, 3.45, 1 + 2.45 / 1.5, 1 + 2.45 / 1.5 + 0.1]
    assert [controller.update(s) for s in sparsities] == pytest.approx(expected, abs=1e-12)
    assert controller.initial_phase is False


def test_controller_refuses_to_start_at_one_and_resumes_from_its_state():
    with pytest.raises(ValueError, match="above 1"):
        AlphaController(1.0)
    first = AlphaController(1.5)
    for s in (0.1, 0.05):
        first.update(s)
    second = AlphaController(1.5)
    second.load_state_dict(first.state_dict())
    assert second.update(0.2) == first.update(0.2)


@pytest.mark.parametrize("old, new", [(2.0, 3.7), (3.0, 1.5), (1.0, 2.0)])
def test_changing_alpha_keeps_theta_and_the_outputs(old, new):
    model = tiny_mlp(alpha=old)
    features, _ = batch()
    before_theta = {name: theta.double() for name, theta in effective_weights(model).items()}
    with torch.no_grad():
        before = model(features)
    reparameterise(model, new)
    assert all(layer.alpha == new for layer in weight_layers(model).values())
    for name, theta in effective_weights(model).items():
        # equal to float32 rounding: a few ulp (bitwise equality is impossible for α > 1)
        assert torch.allclose(theta.double(), before_theta[name], rtol=4 * torch.finfo(torch.float32).eps, atol=0), name
    with torch.no_grad():
        after = model(features)
    assert (after - before).abs().max() <= 1e-6 * before.abs().max()
    assert torch.equal(after.argmax(1), before.argmax(1))


def test_a_change_resets_the_optimizer_state_of_the_weights_only():
    model = tiny_mlp(alpha=2.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    features, labels = batch()
    torch.nn.functional.cross_entropy(model(features), labels).backward()
    optimizer.step()
    layers = weight_layers(model).values()
    assert all("momentum_buffer" in optimizer.state[layer.weight] for layer in layers)
    change_alpha(model, optimizer, 3.0)
    assert all(layer.weight not in optimizer.state for layer in layers)
    assert all("momentum_buffer" in optimizer.state[layer.bias] for layer in layers)


def test_the_method_measures_every_k_epochs_logs_alpha_and_changes_it(tmp_path):
    spec = digits_spec("adaptive_alpha", 1.5, steps=60, options=FAST, momentum=0.9)
    trainer = Trainer(spec, tmp_path, progress=False)
    metrics = trainer.run()
    trace = metrics["alpha_trace"]
    assert [entry["step"] for entry in trace] == [0, 10, 20, 30, 40, 50, 60]
    assert [entry["epoch"] for entry in trace] == [0, 2, 4, 6, 8, 10, 12]
    assert trace[0]["alpha"] == trace[0]["next_alpha"] == 1.5  # the initial model: measured, not updated
    replay = AlphaController(1.5)
    for entry in trace[1:]:
        assert entry["next_alpha"] == min(4.0, replay.update(entry["sparsity"]))
        replay.alpha = entry["next_alpha"]
    assert [a["next_alpha"] for a in trace[:-1]] == [b["alpha"] for b in trace[1:]]
    assert all(layer.alpha == metrics["final_alpha"] for layer in weight_layers(trainer.model).values())
    assert metrics["final_alpha"] != 1.5
    assert fraction_below(trainer.model, 1e-2) == trace[-1]["sparsity"]


def test_fixed_alpha_baseline_measures_without_changing_alpha(tmp_path):
    spec = digits_spec("adaptive_alpha", 1.0, steps=20, options={**FAST, "adapt": False, "max_alpha": None})
    metrics = Trainer(spec, tmp_path, progress=False).run()
    assert {entry["next_alpha"] for entry in metrics["alpha_trace"]} == {1.0} and len(metrics["alpha_trace"]) == 3


def test_the_saved_model_carries_the_adapted_alpha(tmp_path):
    spec = digits_spec("adaptive_alpha", 2.0, steps=30, options=FAST)
    metrics = train_cell(spec, tmp_path / "run", tmp_path / "ckpt", progress=False)
    model, _ = load_trained_model(tmp_path / "run" / "model.pt")
    assert all(layer.alpha == metrics["final_alpha"] != 2.0 for layer in weight_layers(model).values())
    from bench_powerprop.data.tasks import build_task

    assert build_task(spec["data"]).accuracy(model, "test") == metrics["test_accuracy"]
