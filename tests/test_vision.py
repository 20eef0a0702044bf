"""Vision path: powerprop timm ResNets, and CIFAR-10 / ImageNet-style data through the workflow's
FFCV .beton rules into real training jobs (all on CPU, on tiny data written here).

The data are real files: CIFAR-10-format python pickles and an ImageFolder of JPEGs of varying
sizes. Snakemake (the real CLI) writes the .beton files with the datasets' own writers (rule
``write_beton``) and trains one two-step sparse cell per dataset through the ``train`` rule; the task is then read back through FFCV here.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from bench_powerprop.models import build_model
from bench_powerprop.powerprop import PowerpropMixin, powerpropify

from conftest import REPO, run_snakemake
from helpers import cell_run_dir

pytestmark = [
    pytest.mark.vision,
    # numba sometimes reports a KeyError from a dispatcher finalizer when FFCV's compiled
    # pipelines are garbage collected (see tests/test_ffcv_io.py); harmless noise.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TINY_VISION = REPO / "tests" / "configs" / "tiny_vision.yaml"
CIFAR_TRAIN_PER_BATCH, CIFAR_TEST = 4, 8          # 20 training images, 8 test images
IMAGES_PER_CLASS = {"train": 6, "val": 4}
CLASSES = ("cat", "dog")
LOADER_TIMEOUT = 240  # FFCV's Loader hangs rather than fails on a bad pipeline order


def weight_layer_count(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())


# -- timm models -----------------------------------------------------------------------------
def test_powerpropify_resnet50_converts_exactly_the_conv_and_linear_weights():
    torch.manual_seed(0)
    fresh = build_model({"name": "timm", "arch": "resnet50"}, (3, 224, 224), 1000)
    expected = weight_layer_count(fresh)
    assert expected == 54  # 53 convolutions (incl. 4 downsample projections) + the classifier
    model = powerpropify(copy.deepcopy(fresh), 2.0)
    converted = [m for m in model.modules() if isinstance(m, PowerpropMixin)]
    assert len(converted) == expected
    assert all(type(m).__name__ in ("PowerpropConv2d", "PowerpropLinear") for m in converted)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(isinstance(m, PowerpropMixin) for m in norms)
    # φ = sign(θ)|θ|^(1/α) for every converted weight; biases and norm parameters untouched
    fresh_params = dict(fresh.named_parameters())
    for name, parameter in model.named_parameters():
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if isinstance(module, PowerpropMixin) and name.endswith(".weight"):
            expected_phi = torch.sign(fresh_params[name]) * fresh_params[name].abs().pow(0.5)
            torch.testing.assert_close(parameter.detach(), expected_phi)
        else:
            assert torch.equal(parameter, fresh_params[name]), name


def test_alpha_one_resnet50_is_bit_identical():
    torch.manual_seed(0)
    fresh = build_model({"name": "timm", "arch": "resnet50"}, (3, 64, 64), 10).eval()
    model = powerpropify(copy.deepcopy(fresh), 1.0).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(images), fresh(images))


def test_cifar_stem_resnet18():
    model = build_model({"name": "timm", "arch": "resnet18", "cifar_stem": True}, (3, 32, 32), 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.padding == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    features = model.forward_features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 512, 4, 4)  # 32 / 8: only the three strided stages downsample
    powerpropify(model, 2.0)
    assert isinstance(model.conv1, PowerpropMixin)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# -- tiny real data --------------------------------------------------------------------------
def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth gradient plus noise, so JPEG encoding has real structure."""
    y = np.linspace(0, 255, height)[:, None, None]
    x = np.linspace(0, 255, width)[None, :, None]
    base = (y * rng.uniform(0.2, 1) + x * rng.uniform(0.2, 1)) / 2 + rng.uniform(0, 60, (1, 1, 3))
    return np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


def write_image_folder(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    from PIL import Image

    for split, count in IMAGES_PER_CLASS.items():
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                height, width = int(rng.integers(36, 100)), int(rng.integers(36, 100))
                Image.fromarray(_image(rng, height, width)).save(root / split / name / f"{i}.jpg", format="JPEG", quality=90)
    return {split: root / split for split in IMAGES_PER_CLASS}


def write_cifar_pickles(root: Path, rng: np.random.Generator) -> Path:
    root.mkdir(parents=True)
    files = [(f"data_batch_{i}", CIFAR_TRAIN_PER_BATCH) for i in range(1, 6)] + [("test_batch", CIFAR_TEST)]
    for name, count in files:
        images = np.stack([_image(rng, 32, 32) for _ in range(count)])
        with open(root / name, "wb") as handle:
            pickle.dump({b"data": images.transpose(0, 3, 1, 2).reshape(count, -1),
                         b"labels": [int(v) for v in rng.integers(0, 10, count)]}, handle, protocol=2)
    return root


@pytest.fixture(scope="module")
def vision_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision_data")
    rng = np.random.default_rng(0)
    folders = write_image_folder(root / "imagefolder", rng)
    cifar = write_cifar_pickles(root / "cifar-10-batches-py", rng)
    return {"cifar10": cifar, "imagenet": folders}


def workflow_config(data: dict, active: str, path: Path) -> str:
    """A configfile (merged over tiny_vision.yaml) pointing the tiny experiments at ``data``."""
    overrides = {
        "active_experiments": [active],
        "experiments": {
            "tiny_cifar10": {"data": {"root": str(data["cifar10"])}},
            "tiny_imagenet": {"data": {"train_dir": str(data["imagenet"]["train"]), "val_dir": str(data["imagenet"]["val"])}},
        },
    }
    path.write_text(yaml.safe_dump(overrides))
    return str(path)


def train_through_workflow(workdir: Path, data: dict, experiment: str, cell: str) -> Path:
    config = workflow_config(data, experiment, workdir / "paths.yaml")
    axes = dict(segment.split("~") for segment in cell.split("/"))
    run_dir = Path(cell_run_dir([TINY_VISION, config], experiment, **axes))
    run_snakemake("-c2", "--configfile", str(TINY_VISION), config, "--", str(run_dir / "metrics.json"), cwd=workdir)
    return workdir / run_dir


def check_trained_cell(workdir: Path, run_dir: Path, beton_keys: list[str], alpha: float = 2.0) -> dict:
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 2 and spec["alpha"] == alpha
    assert metrics["actual_sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert np.isfinite(metrics["final_loss"])
    for key in beton_keys:  # the workflow put its .beton paths into the (hashed) spec
        assert spec["data"][key].startswith("results/datasets/") and (workdir / spec["data"][key]).is_file(), key
    payload = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    powered = [k for k in payload["state_dict"] if k.endswith("weight_mask")]
    assert len(powered) == 21  # every conv/linear of ResNet-18 carries a mask (20 convs + fc)
    return spec


def read_back(spec: dict, workdir: Path):
    """Build the task of a trained cell from its spec (paths relative to the Snakemake workdir)."""
    from bench_powerprop.data.tasks import build_task

    data = {key: (str(workdir / value) if key.endswith("_beton") else value) for key, value in spec["data"].items()}
    return build_task(data)


# -- end to end ------------------------------------------------------------------------------
@pytest.mark.timeout(LOADER_TIMEOUT)
def test_cifar10_betons_and_training_through_the_workflow(workdir, vision_data):
    pytest.importorskip("ffcv")
    from bench_powerprop.data.ffcv_io import beton_num_samples

    run_dir = train_through_workflow(workdir, vision_data, "tiny_cifar10", "method~gmp/variant~default/alpha~2/sparsity~0.9/seed~0")
    datasets = workdir / "results" / "datasets" / "tiny_cifar10" / "cifar10"
    assert beton_num_samples(datasets / "train.beton") == 5 * CIFAR_TRAIN_PER_BATCH
    assert beton_num_samples(datasets / "test.beton") == CIFAR_TEST
    spec = check_trained_cell(workdir, run_dir, ["train_beton", "test_beton"])
    assert spec["train"]["amp"] == "bf16" and spec["model"]["cifar_stem"]

    # the same task, read back here: batches, resumable order, accuracy over the whole test set
    task = read_back(spec, workdir)
    task.set_device(torch.device("cpu"), channels_last=True)
    batches = task.train_batches(4, seed=0)
    reference = [batches.next_batch()[1].clone() for _ in range(8)]  # 5 batches per epoch: crosses into epoch 1
    images, _ = batches.next_batch()
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert images.is_contiguous(memory_format=torch.channels_last)
    resumed = task.train_batches(4, seed=0)
    resumed.load_state_dict({"epoch": 1, "batch_index": 1})
    for expected in reference[6:8]:  # same samples, same order (FFCV seeds each epoch's order)
        assert torch.equal(resumed.next_batch()[1], expected)
    model = build_model(spec["model"], task.input_shape, task.num_classes)
    powerpropify(model, 2.0)
    accuracy = task.accuracy(model, "test")
    assert 0.0 <= accuracy <= 1.0 and accuracy * CIFAR_TEST == round(accuracy * CIFAR_TEST)
    assert task.accuracy(model, "val") == accuracy  # CIFAR-10: val is the test set, computed once


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_imagenet_folder_betons_and_training_through_the_workflow(workdir, vision_data):
    pytest.importorskip("ffcv")
    from bench_powerprop.data.ffcv_io import beton_num_samples

    run_dir = train_through_workflow(workdir, vision_data, "tiny_imagenet", "method~rigl/variant~default/alpha~2/sparsity~0.9/seed~0")
    datasets = workdir / "results" / "datasets" / "tiny_imagenet" / "imagenet"
    assert beton_num_samples(datasets / "train.beton") == IMAGES_PER_CLASS["train"] * len(CLASSES)
    assert beton_num_samples(datasets / "val.beton") == IMAGES_PER_CLASS["val"] * len(CLASSES)
    for stem in ("train", "val"):
        assert "wrote" in (workdir / "results" / "tiny_imagenet" / "logs" / "write_beton" / "imagenet" / f"{stem}.log").read_text()
    spec = check_trained_cell(workdir, run_dir, ["train_beton", "val_beton"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["mask_updates"] == 2  # after steps 0 and 1 (clock t + 1 = 1, 2 within begin 1, end 2), on captured dense gradients

    task = read_back(spec, workdir)
    images, labels = task.train_batches(4, seed=0).next_batch()
    assert images.shape == (4, 3, 32, 32) and set(labels.tolist()) <= {0, 1}
    model = build_model(spec["model"], task.input_shape, task.num_classes)
    payload = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    powerpropify(model, spec["alpha"]).load_state_dict(payload["state_dict"])
    accuracy = task.accuracy(model, "val")
    assert accuracy * 8 == round(accuracy * 8)  # counted over all 8 validation images
    assert accuracy == pytest.approx(metrics["val_accuracy"])  # the job's evaluation, reproduced here


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_two_process_ddp_on_cifar_betons(vision_data, tmp_path):
    """torchrun, 2 CPU processes (gloo): FFCV's distributed loader, per-rank batch = global / 2, the
    evaluation split into disjoint shards whose counts are summed, and only rank 0 writes."""
    pytest.importorskip("ffcv")
    from bench_powerprop.data import ffcv_io

    from helpers import train_command

    betons = {split: ffcv_io.write_cifar10_beton(vision_data["cifar10"], split, tmp_path / f"{split}.beton", num_workers=2)
              for split in ("train", "test")}
    spec = {"experiment": "ddp_cifar", "method": "rigl", "alpha": 2.0, "sparsity": 0.9, "seed": 0,
            "data": {"name": "cifar10", "root": str(vision_data["cifar10"]), "eval_batch_size": 3, "num_workers": 1,
                     "train_beton": str(betons["train"]), "test_beton": str(betons["test"])},
            "model": {"name": "timm", "arch": "resnet18", "cifar_stem": True},
            "train": {"steps": 2, "batch_size": 4, "lr": 0.05, "momentum": 0.9, "log_every": 1, "eval_every": 2,
                      "checkpoint_every": 1, "threads": 1},
            "method_options": {"update_every": 1, "begin_step": 1, "end_step": 2}}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               *train_command(spec, tmp_path / "run", tmp_path / "ckpt")[2:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=LOADER_TIMEOUT - 30)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert json.loads((tmp_path / "run" / "run.json").read_text())["world_size"] == 2
    assert metrics["steps"] == 2 and metrics["mask_updates"] == 2  # clock t + 1 = 1, 2 (begin 1, end 2)

    # the sharded evaluation (4 + 4 of the 8 test images, summed over ranks) equals a 1-process one
    from bench_powerprop.training.checkpointing import load_trained_model

    model, _ = load_trained_model(tmp_path / "run" / "model.pt")
    from bench_powerprop.data.tasks import build_task

    assert build_task(spec["data"]).accuracy(model, "test") == pytest.approx(metrics["test_accuracy"])


def test_missing_beton_paths_fail_with_the_field_named(tmp_path):
    from bench_powerprop.data.tasks import build_task

    task = build_task({"name": "imagenet", "train_dir": "a", "val_dir": "b"})
    assert task.num_classes == 1000 and task.input_shape == (3, 224, 224)
    with pytest.raises(ValueError, match=r"data\.train_beton: not set"):
        task.train_batches(4, 0)
    task = build_task({"name": "cifar10", "root": "r", "test_beton": str(tmp_path / "missing.beton")})
    assert task.input_shape == (3, 32, 32)
    with pytest.raises(FileNotFoundError, match=r"data\.test_beton"):
        task.accuracy(nn.Linear(1, 1), "test")


def test_device_and_amp_options_are_checked():
    from bench_powerprop.distributed import resolve_device
    from bench_powerprop.training.precision import MixedPrecision

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"train\.device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"train\.device: 'cuda' requested"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match=r"train\.amp: fp16 needs a CUDA device"):
            MixedPrecision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"train\.amp"):
        MixedPrecision("fp8", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_amp_channels_last_training_step(tmp_path):
    """GPU only: bf16 and fp16 (GradScaler) steps of a powerprop ResNet with RigL."""
    from bench_powerprop.training.precision import MixedPrecision

    device = torch.device("cuda")
    model = powerpropify(build_model({"name": "timm", "arch": "resnet18"}, (3, 64, 64), 10), 2.0)
    model.to(device, memory_format=torch.channels_last)
    for mode in ("bf16", "fp16"):
        precision = MixedPrecision(mode, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        images = torch.randn(4, 3, 64, 64, device=device).to(memory_format=torch.channels_last)
        with precision.autocast():
            loss = nn.functional.cross_entropy(model(images), torch.arange(4, device=device))
        precision.backward(loss)
        precision.unscale(optimizer)
        precision.step(optimizer)
        assert torch.isfinite(loss)


def test_gpu_epoch_benchmark_help_and_skip_without_cuda():
    script = [sys.executable, str(REPO / "bench" / "gpu_epoch.py")]
    help_text = subprocess.run([*script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--images" in help_text and "powerprop+rigl" in help_text
    if not torch.cuda.is_available():
        skipped = subprocess.run(script, capture_output=True, text=True, check=True)
        assert "skipped: no CUDA device" in skipped.stdout
