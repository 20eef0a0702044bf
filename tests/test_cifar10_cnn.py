"""The shipped ``configs/cifar10_cnn.yaml`` (claim S5c: the student report's CIFAR-10 CNN) and its model ``convnet``.

The model's default is the TensorFlow CNN tutorial's five-weight-layer CIFAR-10 network, checked against the
tutorial's printed parameter count. The config validates once its data root exists, and runs end to end
through the real Snakemake CLI on tiny CIFAR-10-format pickles written here (the shipped config with only
the data path, the step budget and two seeds overridden): .beton files, training, one-shot pruning, the
oneshot tables and figures, and a claims page on which S5c is judged for ``oneshot_cifar10_cnn``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from test_vision import CIFAR_TEST, write_cifar_pickles
from torch import nn

from bench_powerprop.models import build_model
from bench_powerprop.options import OptionError
from bench_powerprop.reporting.claim_registry import CIFAR_CNN_EXPERIMENT, CLAIMS
from bench_powerprop.reporting.claims import NOT_RUN, runs_with_note

from conftest import REPO, assert_pipeline_outputs_written, run_snakemake
from helpers import run_folder

CONFIG = REPO / "configs" / "cifar10_cnn.yaml"
S5C = next(claim for claim in CLAIMS if claim.key == "S5c")
#: the MLP claims of the oneshot kind, which must not read the CIFAR-10 CNN's rows
MLP_CLAIMS = ("P1a", "P1b", "P2", "S1", "S2", "S3a", "S3b", "S4")
#: tensorflow.org/tutorials/images/cnn, model.summary(): "Total params: 122,570"
TUTORIAL_PARAMETERS = 122_570


def weight_shapes(model: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.weight.shape) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def validate(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", "configs/default.yaml", str(CONFIG), *extra],
                          cwd=REPO, capture_output=True, text=True)


def test_convnet_default_is_the_tensorflow_tutorial_cnn():
    model = build_model({"name": "convnet"}, (3, 32, 32), 10)
    assert weight_shapes(model) == [(32, 3, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3), (64, 1024), (10, 64)]
    assert sum(p.numel() for p in model.parameters()) == TUTORIAL_PARAMETERS
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert all(not layer.bias.any() for layer in model.modules() if isinstance(layer, (nn.Conv2d, nn.Linear)))


def test_convnet_options_flat_inputs_and_size_checks():
    flat = build_model({"name": "convnet", "channels": [4, 8], "pool": [True, True], "padding": "same", "hidden": []},
                       (784,), 10)
    assert weight_shapes(flat) == [(4, 1, 3, 3), (8, 4, 3, 3), (10, 8 * 7 * 7)]  # 28 → 14 → 7, no hidden layer
    assert flat(torch.randn(3, 784)).shape == (3, 10)
    with pytest.raises(OptionError, match=r"^model\.pool: needs one flag per convolution \(3\), got 1$"):
        build_model({"name": "convnet", "pool": [True]}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="too small for convolution 4"):
        build_model({"name": "convnet", "channels": [8] * 4, "pool": [True] * 4}, (3, 32, 32), 10)
    with pytest.raises(ValueError, match="square pixel vectors"):
        build_model({"name": "convnet"}, (64 * 3,), 10)


def test_the_shipped_config_validates_once_its_data_root_exists(tmp_path):
    placeholder = validate()
    assert placeholder.returncode != 0
    assert "experiments.oneshot_cifar10_cnn.data.root: path '/path/to/cifar-10-batches-py' does not exist" in placeholder.stderr
    root = write_cifar_pickles(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    checked = validate("--set", f"experiments.{CIFAR_CNN_EXPERIMENT}.data.root={root}")
    assert checked.returncode == 0, checked.stderr
    assert f"10 training cells in {CIFAR_CNN_EXPERIMENT}" in checked.stdout  # alpha 1 and 2, five seeds
    config = yaml.safe_load(CONFIG.read_text())
    assert config["active_experiments"] == [CIFAR_CNN_EXPERIMENT] and config["results_dir"] == "results/cifar10_cnn"
    assert S5C.runs_with == "configs/cifar10_cnn.yaml" and runs_with_note(S5C) == "; runs with `configs/cifar10_cnn.yaml`"


@pytest.mark.slow
@pytest.mark.vision
@pytest.mark.timeout(1800)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # numba finalizer noise, see test_vision
def test_shipped_config_runs_end_to_end_and_judges_s5c(workdir):
    pytest.importorskip("ffcv")
    root = write_cifar_pickles(workdir / "cifar-10-batches-py", np.random.default_rng(0))
    overrides = {"experiments": {CIFAR_CNN_EXPERIMENT: {
        "data": {"root": str(root), "eval_batch_size": 4},
        "train": {"steps": 3, "batch_size": 4, "log_every": 1, "eval_every": 3, "checkpoint_every": 3, "threads": 1},
        "grid": [{"method": ["dense"], "alpha": [1, 2], "sparsity": [0], "seed": [0, 1]}],
        "resources": {"gpu": 0, "threads": 1, "beton_threads": 1}}}}
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(overrides))
    run_snakemake("-c2", "--configfile", str(CONFIG), "tiny.yaml", cwd=workdir, timeout=1700)

    results = workdir / "results" / "cifar10_cnn"
    experiment = results / CIFAR_CNN_EXPERIMENT
    assert_pipeline_outputs_written(experiment, "oneshot")
    runs = pd.read_csv(experiment / "tables" / "oneshot_runs.csv")
    keep_levels = len(np.geomspace(0.01, 1.0, 20))
    assert len(runs) == 4 * keep_levels and set(runs["alpha"]) == {1.0, 2.0} and set(runs["seed"]) == {0, 1}
    assert (runs["steps"] == 3).all() and runs["target_sparsity"].min() == 0.0  # keep level 1.0: the unpruned model
    run = run_folder(experiment / "runs" / "method~dense" / "variant~default" / "alpha~2" / "sparsity~0" / "seed~0") / "run.json"
    spec = json.loads(run.read_text())["spec"]
    assert spec["model"]["name"] == "convnet" and spec["data"]["train_beton"].startswith("results/cifar10_cnn/datasets/")
    correct = runs["test_accuracy"].to_numpy() * CIFAR_TEST  # accuracies over the 8 test images
    assert np.allclose(correct, np.round(correct))

    claims = pd.read_csv(results / "reproduction" / "claims.csv", keep_default_na=False)
    s5c = claims[claims["key"] == "S5c"]
    assert list(s5c["experiment"]) == [CIFAR_CNN_EXPERIMENT]
    assert s5c["verdict"].iloc[0] != NOT_RUN and (s5c["n_treatment"] == 2).all() and (s5c["n_baseline"] == 2).all()
    mlp_rows = claims[claims["key"].isin(MLP_CLAIMS)]
    assert set(mlp_rows["experiment"]) == {"—"} and set(mlp_rows["verdict"]) == {NOT_RUN}
