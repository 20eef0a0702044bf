"""Every registered method (``METHODS``) on digits through the Trainer, for α ∈ {1, 2}.

Sparse methods (``Method.sparse``) must end with exactly their planned per-layer counts
(``method.target_counts``) summing to round((1 − s)·N), keep masked weights at exactly zero
after every step (θ always; φ too unless the method keeps φ dense, as Top-KAST does), and
resume bitwise from a Trainer checkpoint. Runs are stepped phase by phase (``Trainer.advance``),
so methods with several phases (the continual ones, here on a one-task sequence) are covered too.
A new method is tested here without edits; give it short-run options in ``FAST_OPTIONS`` if its
defaults act on a scale of hundreds of steps.
"""

import math

import pytest
import torch

from bench_powerprop.masks import kept_count
from bench_powerprop.methods import METHODS
from bench_powerprop.options import CellFacts, OptionError
from bench_powerprop.powerprop import ThetaLeaves, effective_weight_of, weight_layers
from bench_powerprop.training.trainer import Trainer

from helpers import digits_spec

STEPS, RESUME_AT, SPARSITY = 42, 23, 0.9
# An epoch of digits is 20 steps. RESUME_AT is after the first reshuffle (step 20) and STEPS past the second (40):
# a resume that does not restore the data-order generator draws another order there. It is also after a mask
# change, with more after it: gmp prunes at 4, 9, ..., 19, 24; rigl/set/dsr update at 5, 10, ..., 20, 25;
# adaptive α changes at 6, 12, 18, 24.
FAST_OPTIONS = {
    "gmp": {"begin_step": 0.1, "end_step": 0.6, "frequency": 5},
    "rigl": {"update_every": 5},
    "set": {"update_every": 5},
    "dsr": {"update_every": 5, "initial_threshold": 0.02, "dense_layers": "last"},
    # the papers keep first and last dense; the first layer (19,200 of 50,200 weights) does not fit 10% of the whole
    "topkast": {"dense_layers": "last"},
    "adaptive_alpha": {"every_epochs": 2, "steps_per_epoch": 3, "max_alpha": 3.0},  # α changes at steps 6, 12, ..., 36
}
# Adaptive α must start above 1: at α = 1 the method runs as its own fixed-α baseline.
ALPHA_OPTIONS = {("adaptive_alpha", 1.0): {"adapt": False}}
SGD_MOMENTUM_WD = {"momentum": 0.9, "weight_decay": 1e-3}
ADAM = {"optimizer": "adam", "lr": 1e-3}


def spec_for(method, alpha, steps=STEPS, **train):
    sparsity = SPARSITY if METHODS.get(method).sparse else 0.0
    options = {**FAST_OPTIONS.get(method, {}), **ALPHA_OPTIONS.get((method, alpha), {})}
    return digits_spec(method=method, alpha=alpha, sparsity=sparsity, steps=steps, options=options, **train)


def assert_masks_hold(trainer, where=""):
    keeps_dense_phi = trainer.method.keeps_dense_phi
    for name, layer in weight_layers(trainer.model).items():
        mask = getattr(layer, "weight_mask", None)
        if mask is None:
            continue
        assert (effective_weight_of(layer)[mask == 0] == 0).all(), f"{name}: masked θ not zero {where}"
        if not keeps_dense_phi:
            assert (layer.weight.detach()[mask == 0] == 0).all(), f"{name}: masked φ not zero {where}"
        grad_mask = getattr(layer, "weight_grad_mask", None)
        if grad_mask is not None and not trainer.method.continual:  # continual methods freeze forward weights
            assert (grad_mask >= mask).all(), f"{name}: backward set does not contain the forward set {where}"


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("method", METHODS.names())
def test_method_trains_hits_target_and_resumes_exactly(method, alpha, tmp_path):
    spec = spec_for(method, alpha, **SGD_MOMENTUM_WD)
    trainer = Trainer(spec, tmp_path / "full", progress=False)
    while trainer.step < trainer.total_steps:
        loss = trainer.advance()
        assert math.isfinite(loss), f"non-finite loss at step {trainer.step}"
        assert_masks_hold(trainer, f"after step {trainer.step}")
    metrics = trainer.final_metrics(0.0)
    assert 0 < metrics["training_flops_fraction"] <= 1

    layers = weight_layers(trainer.model)
    if METHODS.get(method).sparse:
        counts = trainer.method.target_counts
        total = sum(layer.weight.numel() for layer in layers.values())
        assert sum(counts.values()) == kept_count(total, 1 - SPARSITY)  # exact global count
        for name, layer in layers.items():
            assert int(layer.weight_mask.sum()) == counts[name], name  # exact planned per-layer count
            assert int((effective_weight_of(layer) != 0).sum()) <= counts[name], name
            assert metrics["layer_density"][name] == counts[name] / layer.weight.numel()
        assert metrics["actual_sparsity"] == pytest.approx(1 - sum(counts.values()) / total, abs=1e-12)
        assert metrics["zero_fraction"] >= metrics["actual_sparsity"]
        assert metrics["training_flops_fraction"] < 1
    elif METHODS.get(method).continual:  # one task: its mask and its evaluation (tests/test_continual.py)
        [evaluation] = metrics["continual"]["evaluations"]
        assert evaluation["test_accuracy"] == metrics["test_accuracy"]
        assert evaluation["capacity"] == pytest.approx(1 - metrics["actual_sparsity"], abs=1e-12)
    else:
        assert all(getattr(layer, "weight_mask", None) is None for layer in layers.values())
        assert metrics["training_flops_fraction"] == 1.0

    partial = Trainer(spec, tmp_path / "resume", progress=False)
    while partial.step < RESUME_AT:
        partial.advance()
    partial.checkpoint()
    resumed = Trainer(spec, tmp_path / "resume", progress=False)
    assert resumed.resumed_from == RESUME_AT
    resumed_metrics = resumed.run()
    expected, actual = trainer.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        assert torch.equal(value, actual[key]), key
    assert resumed.method.report(resumed.ctx) == trainer.method.report(trainer.ctx)
    assert resumed_metrics["test_accuracy"] == metrics["test_accuracy"]


SPARSE_METHODS = [name for name in METHODS.names() if METHODS.get(name).sparse]


@pytest.mark.parametrize("method", SPARSE_METHODS)
def test_masks_hold_under_adam(method, tmp_path):
    trainer = Trainer(spec_for(method, 2.0, steps=30, **ADAM), tmp_path, progress=False)
    while trainer.step < 30:
        assert math.isfinite(trainer.train_step())
        assert_masks_hold(trainer, f"after Adam step {trainer.step}")
    for name, layer in weight_layers(trainer.model).items():
        assert int(layer.weight_mask.sum()) == trainer.method.target_counts[name]


@pytest.mark.parametrize("method", METHODS.names())
def test_unknown_option_is_rejected_naming_it(method):
    with pytest.raises(OptionError, match=r"^methods\.x\.no_such_option: unknown option"):
        METHODS.options(method).parse({"no_such_option": 1}, "methods.x")


@pytest.mark.parametrize("method", METHODS.names())
def test_default_options_parse_and_round_trip(method):
    cell = CellFacts(alpha=2.0)  # adaptive α must start above 1
    options = METHODS.options(method).parse({}, "methods.x", cell)
    assert METHODS.options(method).parse(options.as_dict(), "methods.x", cell) == options


def _bits(tensor):
    return tensor.detach().contiguous().view(torch.int32) if tensor.dtype == torch.float32 else tensor


def _state_bits(trainer):
    return {name: _bits(value) for name, value in trainer.model.state_dict().items()}


def _trained_state(spec, tmp_path, always_enforce, monkeypatch):
    from bench_powerprop import masks

    if always_enforce:
        original = masks.enforce_layers
        monkeypatch.setattr(masks, "enforce_layers", lambda layers, optimizer=None: original(layers))
    trainer = Trainer(spec, tmp_path, progress=False)
    while trainer.step < STEPS:
        trainer.train_step()
    monkeypatch.undo()
    skipped = [name for name, layer in weight_layers(trainer.model).items() if getattr(layer, "masked_phi_stay_zero", False)]
    return _state_bits(trainer), skipped


@pytest.mark.parametrize(("alpha", "train"), [(1.0, SGD_MOMENTUM_WD), (1.5, SGD_MOMENTUM_WD), (3.0, SGD_MOMENTUM_WD),
                                              (2.0, ADAM)], ids=["sgd-a1", "sgd-a1.5", "sgd-a3", "adam-a2"])
@pytest.mark.parametrize("method", SPARSE_METHODS)
def test_skipping_the_mask_enforce_changes_no_bit(method, alpha, train, tmp_path, monkeypatch):
    """``masks.enforce`` skips a layer once the optimizer holds no state at its masked positions: the
    weights, masks and buffers after training are the same bits as with the enforce after every step."""
    if (method, alpha) == ("adaptive_alpha", 1.0):
        pytest.skip("adaptive α starts above 1")
    spec = spec_for(method, alpha, **train)
    skipping, skipped = _trained_state(spec, tmp_path / "skip", False, monkeypatch)
    enforcing, _ = _trained_state(spec, tmp_path / "enforce", True, monkeypatch)
    assert skipping.keys() == enforcing.keys()
    for name in skipping:
        assert torch.equal(skipping[name], enforcing[name]), f"{name} differs"
    if method in ("static", "pai") and alpha == 1.0:  # masks fixed from step 0: the skip must happen
        assert skipped, "no layer skipped the enforce"


@pytest.mark.parametrize("train", [SGD_MOMENTUM_WD, ADAM], ids=["sgd", "adam"])
@pytest.mark.parametrize("method", METHODS.names())
def test_theta_outside_autograd_changes_no_bit(method, train, tmp_path):
    """The trainer's ``ThetaLeaves`` (θ of α = 2 layers as leaves, ∂L/∂φ formed after the backward pass) gives the
    same bits as θ inside autograd (``_SquarePowerWeight``, DDP's path), every method and phase stepped through;
    and it is really used: some layer took θ as a leaf in the run (unless the method keeps masked φ dense)."""
    spec = spec_for(method, 2.0, **train)
    states, leaf_steps = {}, 0
    for outside in (True, False):
        trainer = Trainer(spec, tmp_path / str(outside), progress=False)
        if not outside:
            trainer.theta_leaves = ThetaLeaves([])
        while trainer.step < trainer.total_steps:
            leaf_steps += outside and any(layer.takes_square_path() for layer in trainer.theta_leaves.layers)
            trainer.advance()
        states[outside] = _state_bits(trainer)
    if not METHODS.get(method).keeps_dense_phi:  # masked φ kept dense (Top-KAST) take the masked path instead
        assert leaf_steps > 0, "no step took θ outside autograd"
    assert states[True].keys() == states[False].keys()
    for name in states[True]:
        assert torch.equal(states[True][name], states[False][name]), f"{name} differs"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["static", "rigl"])
def test_train_compile_trains_to_the_same_counts_with_masks_holding(method, tmp_path):
    """train.compile's fused θ path through the Trainer (RigL switches layers to its dense-gradient path on update
    steps and back): exact counts, masks holding after every step, and for fixed masks the eager run's loss."""
    runs = {}
    for compiled in (False, True):
        trainer = Trainer(spec_for(method, 2.0, compile=compiled), tmp_path / str(compiled), progress=False)
        while trainer.step < STEPS:
            loss = trainer.train_step()
            assert math.isfinite(loss)
            assert_masks_hold(trainer, f"after step {trainer.step}")
        for name, layer in weight_layers(trainer.model).items():
            assert int(layer.weight_mask.sum()) == trainer.method.target_counts[name]
        runs[compiled] = loss
    if method == "static":
        assert runs[True] == pytest.approx(runs[False], rel=1e-4)
