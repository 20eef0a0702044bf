"""The paper-protocol configs (configs/imagenet_resnet50.yaml, configs/cifar10_resnet.yaml) plan the
right jobs: a Snakemake dry run with the data paths pointed at scratch directories lists every
cell with its GPU resources and launcher, and the .beton rules feed the training cells."""

import itertools
import json
import re

import pytest
import yaml

from conftest import REPO, run_snakemake

IMAGENET = REPO / "configs" / "imagenet_resnet50.yaml"
CIFAR = REPO / "configs" / "cifar10_resnet.yaml"
SPARSE_METHODS = ["gmp", "rigl", "topkast", "static", "set"]
PAPER_SPARSITIES = ["0.8", "0.9", "0.95"]


def job_blocks(stdout: str) -> list[str]:
    """The per-job paragraphs of a ``snakemake -n -p`` listing."""
    return [block for block in re.split(r"\n(?=\[[A-Z][a-z]{2} )", stdout) if "\nrule " in "\n" + block]


def blocks_of(stdout: str, rule: str) -> list[str]:
    return [block for block in job_blocks(stdout) if re.search(rf"^rule {rule}:", block, re.M)]


def wildcards_of(block: str) -> dict[str, str]:
    line = re.search(r"^\s*wildcards: (.*)$", block, re.M).group(1)
    return dict(item.split("=", 1) for item in line.split(", "))


def cell_axes(cell_path: str) -> tuple[str, ...]:
    """(method, alpha, sparsity, seed) of a ``{cell}`` wildcard such as ``method~rigl/variant~default/alpha~2/...``."""
    axes = dict(part.split("~", 1) for part in cell_path.split("/"))
    return axes["method"], axes["alpha"], axes["sparsity"], axes["seed"]


def override(path, experiment, data):
    path.write_text(yaml.safe_dump({"experiments": {experiment: {"data": data}}}))
    return str(path)


@pytest.fixture
def imagenet_dirs(tmp_path):
    dirs = {name: tmp_path / "imagenet" / name for name in ("train", "val")}
    for directory in dirs.values():
        (directory / "n01440764").mkdir(parents=True)
    return dirs


def test_imagenet_dry_run_lists_every_cell_on_8_gpus_with_the_beton_rule(workdir, imagenet_dirs, tmp_path):
    paths = override(tmp_path / "paths.yaml", "imagenet_resnet50",
                     {"train_dir": str(imagenet_dirs["train"]), "val_dir": str(imagenet_dirs["val"])})
    result = run_snakemake("-n", "-p", "--configfile", str(IMAGENET), paths, cwd=workdir)
    out = result.stdout

    beton_jobs = {wildcards_of(block)["stem"]: block for block in blocks_of(out, "write_beton")}
    assert sorted(beton_jobs) == ["train", "val"]  # one job per .beton file imagenet declares
    for stem, block in beton_jobs.items():
        data = json.loads(re.search(r"--data '(\{.*?\})' --stem", block).group(1))
        assert data == {"name": "imagenet", "train_dir": str(imagenet_dirs["train"]), "val_dir": str(imagenet_dirs["val"]),
                        "beton": {"max_resolution": 500, "compress_probability": 0.5, "jpeg_quality": 90,
                                  "write_mode": "proportion", "chunksize": 100}}  # FFCV's published ResNet-50 settings
        assert f"input: {imagenet_dirs[stem]}" in block  # the writer reads the ImageFolder tree of its split
        assert f"--out results/datasets/imagenet_resnet50/imagenet/{stem}.beton" in block

    train_jobs = blocks_of(out, "train")
    cells = {cell_axes(w["cell"]) for w in map(wildcards_of, train_jobs)}
    expected = {("dense", alpha, "0", "0") for alpha in ("1", "2")}
    expected |= {(m, a, s, "0") for m, a, s in itertools.product(SPARSE_METHODS, ("1", "2"), PAPER_SPARSITIES)}
    assert cells == expected and len(train_jobs) == 32
    for block in train_jobs:
        assert re.search(r"resources: .*\bgpu=8\b.*\bruntime=720\b.*\bmem_mb=480000\b", block), block[:2000]
        assert "python -m bench_powerprop train --spec" in block and "--processes 8" in block  # restarts under torchrun
        betons = "results/datasets/imagenet_resnet50/imagenet"
        assert f"input: {betons}/train.beton, {betons}/val.beton" in block
        spec = json.loads(re.search(r"--spec '(\{.*?\})' --processes", block).group(1))
        assert spec["data"]["train_beton"] == "results/datasets/imagenet_resnet50/imagenet/train.beton"
        assert spec["data"]["val_beton"] == "results/datasets/imagenet_resnet50/imagenet/val.beton"
        assert spec["train"]["batch_size"] == 4096 and spec["train"]["label_smoothing"] == 0.1
        assert spec["model"] == {"name": "timm", "arch": "resnet50", "cifar_stem": False}
    assert blocks_of(out, "aggregate_sparse_training") and blocks_of(out, "figures_sparse_training")


def test_imagenet_placeholder_paths_are_rejected_naming_the_field(workdir):
    result = run_snakemake("-n", "--configfile", str(IMAGENET), cwd=workdir, check=False)
    assert result.returncode != 0
    assert "experiments.imagenet_resnet50.data.train_dir: path '/path/to/imagenet/train' does not exist" in result.stderr


def test_cifar10_dry_run_single_gpu_cells_read_the_cifar_betons(workdir, tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(b"")  # a dry run only checks that the inputs exist
    paths = override(tmp_path / "paths.yaml", "cifar10_resnet18", {"root": str(root)})
    out = run_snakemake("-n", "-p", "--configfile", str(CIFAR), paths, cwd=workdir).stdout

    beton = {wildcards_of(block)["stem"]: block for block in blocks_of(out, "write_beton")}
    assert sorted(beton) == ["test", "train"]
    assert f"{root}/data_batch_5" in beton["train"] and f"{root}/test_batch" not in beton["train"]
    assert f"{root}/test_batch" in beton["test"] and f"{root}/data_batch_1" not in beton["test"]
    train_jobs = blocks_of(out, "train")
    assert len(train_jobs) == 2 * 3 + len(SPARSE_METHODS) * 2 * 3 * 3  # dense α×seeds + methods×α×sparsity×seeds
    for block in train_jobs:
        assert re.search(r"resources: .*\bgpu=1\b", block)
        assert "Shell command: python -m bench_powerprop train" in block  # one GPU: no torchrun
        assert "results/datasets/cifar10_resnet18/cifar10/test.beton" in block


def test_paper_configs_validate(tmp_path, imagenet_dirs):
    import subprocess
    import sys

    paths = override(tmp_path / "paths.yaml", "imagenet_resnet50",
                     {"train_dir": str(imagenet_dirs["train"]), "val_dir": str(imagenet_dirs["val"])})
    result = subprocess.run([sys.executable, "-m", "bench_powerprop", "validate", str(REPO / "configs" / "default.yaml"),
                             str(IMAGENET), paths], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "config ok: 32 training cells in imagenet_resnet50" in result.stdout


def test_cifar10_topkast_gets_the_same_l2_strength_as_weight_decay():
    """Top-KAST's penalty/2·Σw² on its forward set replaces weight decay there; its gradient penalty·w equals SGD's
    weight_decay·w only when the two coefficients are equal (methods/topkast.py), so they must be."""
    experiment = yaml.safe_load(CIFAR.read_text())["experiments"]["cifar10_resnet18"]
    assert experiment["methods"]["topkast"]["penalty"] == experiment["train"]["weight_decay"] == 0.0005
