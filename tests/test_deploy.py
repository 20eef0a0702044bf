"""Deployment forms compute what the masked dense model computes, with exactly the sizes they claim; export is exact.

Latencies are measurements (bench/bench_deploy.py, the deploy rule's table): never asserted here.
"""

import pytest
import torch
from torch import nn

from bench_powerprop import deploy, masks
from bench_powerprop.cli import main
from bench_powerprop.data.tasks import build_task
from bench_powerprop.powerprop import PowerpropMixin
from bench_powerprop.structure import parse_structure
from bench_powerprop.training.trainer import train_cell
from tests.helpers import digits_spec


def pruned_mlp(structure="unstructured", keep=0.2, seed=0):
    """A plain 32-24-16-4 MLP pruned by magnitude, with non-zero biases (a removed unit still outputs relu(b))."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        for layer in masks.weight_layers(model).values():
            layer.bias.uniform_(-0.5, 0.5)
    scores = {name: layer.weight.detach().abs() for name, layer in masks.weight_layers(model).items()}
    mask = masks.prune(scores, keep, "layerwise", 1.0, structure=parse_structure(structure))
    with torch.no_grad():
        for name, layer in masks.weight_layers(model).items():
            layer.weight.mul_(mask[name])
    return model, mask


@pytest.mark.parametrize("structure", ["unstructured", "channel", {"n_of_m": {"n": 2, "m": 4}}])
def test_sparse_forms_compute_the_masked_dense_outputs(structure):
    model, _ = pruned_mlp(structure)
    inputs = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    for form, (forward, _, _) in deploy.forms(model).items():
        torch.testing.assert_close(forward(inputs), model(inputs), rtol=1e-5, atol=1e-6, msg=form)


def test_csr_size_and_multiply_adds_are_exactly_the_kept_weights():
    model, mask = pruned_mlp()
    layers = deploy.mlp_layers(model)
    csr = deploy.CsrMLP(layers)
    kept = mask.count()
    rows = sum(layer.out_features for layer in layers)
    # int64 row pointers (rows + 1 per layer) and column indices, float32 values, float32 biases
    expected = 8 * (rows + len(layers)) + 8 * kept + 4 * kept + 4 * rows
    assert sum(t.numel() * t.element_size() for t in csr.tensors().values()) == expected
    available = deploy.forms(model)
    assert available["csr"][2] == kept and available["dense"][2] == mask.numel()


def test_channel_pruning_leaves_dense_layers_of_exactly_the_kept_units():
    model, mask = pruned_mlp("channel", keep=0.25)
    shrunk = deploy.mlp_layers(deploy.channel_pruned(deploy.mlp_layers(model)))
    kept_units = [int(mask[name].any(dim=1).sum()) for name in list(mask)[:-1]]
    assert kept_units == [6, 4]  # round(0.25 · 24), round(0.25 · 16)
    assert [tuple(layer.weight.shape) for layer in shrunk] == [(6, 32), (4, 6), (4, 4)]
    assert deploy.forms(model)["channel"][2] == 6 * 32 + 4 * 6 + 4 * 4


def test_deployment_refuses_a_model_that_is_not_an_mlp_in_one_line():
    with pytest.raises(ValueError, match=r"^deployment handles MLPs"):
        deploy.mlp_layers(nn.Sequential(nn.Conv2d(1, 2, 3)))


@pytest.fixture(scope="module")
def trained_cell(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy_cell")
    spec = digits_spec(method="gmp", alpha=2.0, sparsity=0.9, steps=30)
    metrics = train_cell(spec, root / "run", root / "ckpt", progress=False)
    return root / "run", spec, metrics


@pytest.mark.parametrize("compress", [False, True])
def test_export_reproduces_the_cell_s_recorded_test_accuracy_exactly(trained_cell, tmp_path, compress):
    run_dir, spec, metrics = trained_cell
    out = tmp_path / "exported.pt"
    assert main(["export", str(run_dir), str(out), *(["--compress"] if compress else [])]) == 0
    plain = deploy.load_exported(out)
    assert not any(isinstance(module, PowerpropMixin) for module in plain.modules())
    assert build_task(spec["data"]).accuracy(plain, "test") == metrics["test_accuracy"]
    weights = [layer.weight for layer in deploy.mlp_layers(plain)]
    zeros = sum(int((weight == 0).sum()) for weight in weights) / sum(weight.numel() for weight in weights)
    assert zeros >= metrics["actual_sparsity"] - 1e-12  # every masked weight exported as an exact zero
    stored = torch.load(out, weights_only=True)["state_dict"]
    assert (stored["1.weight"].layout == torch.sparse_csr) == compress


def test_export_of_a_directory_without_a_model_fails_in_one_line(tmp_path, capsys):
    assert main(["export", str(tmp_path), str(tmp_path / "out.pt")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
