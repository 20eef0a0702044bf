"""The gradient-flow probe: the norm of the masked gradient of the unregularised loss on one fixed
validation batch, at the configured steps, without changing training, resumed bitwise."""

import math

import pandas as pd
import pytest
import torch

from bench_powerprop.config import ConfigError, validate_config
from bench_powerprop.powerprop import weight_layers
from bench_powerprop.training.probes import probe_seed
from bench_powerprop.training.progress import progress_bar
from bench_powerprop.training.trainer import Trainer

from helpers import digits_config, digits_spec


def probed_spec(method="static", alpha=2.0, sparsity=0.9, steps=30, **train):
    return digits_spec(method, alpha=alpha, sparsity=sparsity, steps=steps, gradient_norm_every=10, gradient_norm_batch_size=64, **train)


def independent_norms(trainer):
    """‖∂L/∂(parameters)‖ by an ordinary backward pass, and ‖m ⊙ ∂L/∂θ‖ by the chain rule ∂L/∂θ = ∂L/∂φ / (α|φ|^(α−1))."""
    features, labels = trainer.ctx.tasks[0].held_out_batch(64, probe_seed(trainer.spec.seed))
    model = trainer.model
    model.zero_grad(set_to_none=True)
    trainer.ctx.loss_fn(model(features), labels).backward()
    phi_norm = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
    theta_sq = 0.0
    layers = {id(layer.weight): layer for layer in weight_layers(model).values()}
    for parameter in model.parameters():
        layer = layers.get(id(parameter))
        grad = parameter.grad.double()
        if layer is not None:
            kept = (layer.weight_mask > 0) if layer.weight_mask is not None else torch.ones_like(grad, dtype=torch.bool)
            phi = parameter.detach().double()[kept]
            grad = grad[kept] / (layer.alpha * phi.abs() ** (layer.alpha - 1))
        theta_sq += float(grad.pow(2).sum())
    model.zero_grad(set_to_none=True)
    return phi_norm, math.sqrt(theta_sq)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_probe_matches_an_independent_computation_and_its_steps(alpha, tmp_path):
    trainer = Trainer(probed_spec(alpha=alpha), tmp_path, progress=False)
    trainer.run()
    norms = pd.DataFrame(trainer.gradient_norms())
    assert norms["step"].tolist() == [0, 10, 20, 30]
    phi_norm, theta_norm = independent_norms(trainer)
    last = norms.iloc[-1]
    assert last["grad_norm"] == pytest.approx(phi_norm, rel=1e-5)
    assert last["grad_norm_theta"] == pytest.approx(theta_norm, rel=1e-4)
    if alpha == 1.0:
        assert (norms["grad_norm"] - norms["grad_norm_theta"]).abs().max() < 1e-6


def test_probe_does_not_change_training(tmp_path):
    probed = Trainer(probed_spec("rigl", steps=30), tmp_path / "probed", progress=False)
    probed.run()
    spec = probed_spec("rigl", steps=30)
    for key in ("gradient_norm_every", "gradient_norm_batch_size"):
        spec["train"].pop(key)
    plain = Trainer(spec, tmp_path / "plain", progress=False)
    plain.run()
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, probed.model.state_dict()[key]), key
    assert plain.gradient_norms() == []


def test_probe_rows_resume_bitwise(tmp_path):
    spec = probed_spec(steps=30)
    full = Trainer(spec, tmp_path / "full", progress=False)
    full.run()
    partial = Trainer(spec, tmp_path / "resume", progress=False)
    bar = progress_bar(30, 0, "partial", enabled=False)
    while partial.step < 17:  # the trainer's own per-step bookkeeping (probe included), then the job dies
        partial._after_step(partial.train_step(), bar)
    partial.checkpoint()
    resumed = Trainer(spec, tmp_path / "resume", progress=False)
    resumed.run()
    assert resumed.gradient_norms() == full.gradient_norms()


def test_gradflow_experiments_must_turn_the_probe_on():
    config = digits_config("dense")
    experiment = config["experiments"]["oneshot_digits"]
    experiment["kind"] = "gradflow"
    experiment.pop("prune")
    with pytest.raises(ConfigError, match=r"oneshot_digits.train: kind 'gradflow' needs one of gradient_norm_every"):
        validate_config(config)
