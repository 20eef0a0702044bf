"""FFCV .beton round trips on CPU: real JPEG ImageFolder + CIFAR-10-format pickles."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ffcv")  # safety net only: scripts/install_ffcv.sh installs it

import torch
from PIL import Image

from bench_powerprop.data import ffcv_io

REPO_ROOT = Path(ffcv_io.__file__).resolve().parents[2]
CIFAR_PER_TRAIN_BATCH = 4
CIFAR_TEST_SIZE = 6
CIFAR_TRAIN_SIZE = 5 * CIFAR_PER_TRAIN_BATCH
IMAGES_PER_CLASS = 6
CLASSES = ("cat", "dog")
LOADER_TIMEOUT = 120

# numba (0.68) sometimes reports a KeyError from a dispatcher finalizer when
# FFCV's compiled pipelines are garbage collected; it is harmless noise.
pytestmark = [
    pytest.mark.vision,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


# -------------------------------------------------------------------- data


def _random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth gradient plus noise, so JPEG encoding has real structure."""
    y = np.linspace(0, 255, height)[:, None, None]
    x = np.linspace(0, 255, width)[None, :, None]
    base = (y * rng.uniform(0.2, 1) + x * rng.uniform(0.2, 1)) / 2 + rng.uniform(0, 60, (1, 1, 3))
    noise = rng.normal(0, 20, (height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _make_image_folder(root: Path, rng: np.random.Generator) -> Path:
    for class_index, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(IMAGES_PER_CLASS):
            height, width = int(rng.integers(40, 120)), int(rng.integers(40, 120))
            image = Image.fromarray(_random_image(rng, height, width))
            if class_index == 1 and i == 0:
                image = image.convert("L")  # a greyscale JPEG must come out as RGB
            image.save(root / name / f"img_{i}.jpg", format="JPEG", quality=90)
    return root


def _write_cifar_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    flat = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as handle:
        pickle.dump({b"data": flat, b"labels": labels, b"batch_label": b"fake"}, handle, protocol=2)


def _make_cifar_dir(root: Path, rng: np.random.Generator) -> tuple[Path, dict]:
    root.mkdir(parents=True)
    source: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names = [(f"data_batch_{i}", CIFAR_PER_TRAIN_BATCH) for i in range(1, 6)] + [("test_batch", CIFAR_TEST_SIZE)]
    start = 0
    for name, count in names:
        images = np.stack([_random_image(rng, 32, 32) for _ in range(count)])
        labels = [(start + i) % 10 for i in range(count)]
        start += count
        _write_cifar_batch(root / name, images, labels)
        source[name] = (images, np.array(labels))
    train = tuple(np.concatenate([source[f"data_batch_{i}"][k] for i in range(1, 6)]) for k in (0, 1))
    return root, {"train": train, "test": source["test_batch"]}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return _make_image_folder(tmp_path_factory.mktemp("imagefolder") / "train", np.random.default_rng(0))


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return _make_cifar_dir(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py", np.random.default_rng(1))


@pytest.fixture(scope="module")
def cifar_betons(cifar, tmp_path_factory):
    cifar_dir, _ = cifar
    out = tmp_path_factory.mktemp("cifar_beton")
    return {split: ffcv_io.write_cifar10_beton(cifar_dir, split, out / f"{split}.beton", num_workers=2)
            for split in ("train", "test")}


@pytest.fixture(scope="module")
def imagenet_jpg_beton(image_folder, tmp_path_factory):
    # write_mode="jpg" forces every sample through libturbojpeg on read;
    # max_resolution=64 forces FFCV's cv2 resize for the larger images.
    out = tmp_path_factory.mktemp("imagenet_beton") / "jpg.beton"
    return ffcv_io.write_imagenet_beton(image_folder, out, max_resolution=64, write_mode="jpg", num_workers=2)


@pytest.fixture(scope="module")
def imagenet_default_beton(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("imagenet_beton") / "default.beton"
    return ffcv_io.write_imagenet_beton(image_folder, out, num_workers=2)


def _collect(loader, epochs: int = 1) -> tuple[list, list[int]]:
    shapes_dtypes, labels = [], []
    for _ in range(epochs):
        for images, batch_labels in loader:
            shapes_dtypes.append((tuple(images.shape), images.dtype, batch_labels.dtype, batch_labels.dim()))
            labels.extend(batch_labels.tolist())
    return shapes_dtypes, labels


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith(".") or p.suffix in (".tmp", ".error")]


# ------------------------------------------------------------------ module


def test_import_does_not_load_ffcv_or_torch():
    code = "import sys, bench_powerprop.data.ffcv_io; print('ffcv' in sys.modules, 'torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_load_cifar10_split_matches_pickles(cifar):
    cifar_dir, source = cifar
    for split in ("train", "test"):
        images, labels = ffcv_io.load_cifar10_split(cifar_dir.parent, split)  # parent dir accepted too
        assert images.shape == (len(source[split][0]), 32, 32, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(images, source[split][0])
        np.testing.assert_array_equal(labels, source[split][1])
    with pytest.raises(ValueError):
        ffcv_io.load_cifar10_split(cifar_dir, "validation")


def test_cpu_pipelines_keep_jit_ops_before_to_tensor():
    from ffcv.transforms import ModuleWrapper, NormalizeImage, ToTensor

    for train in (True, False):
        for style in ffcv_io.PIPELINE_STYLES:
            jit = [type(op) for op in ffcv_io.image_pipeline(train, "cpu", 32, style, normalize="jit")]
            assert jit.index(NormalizeImage) < jit.index(ToTensor)
            torch_ops = [type(op) for op in ffcv_io.image_pipeline(train, "cpu", 32, style, normalize="torch")]
            assert NormalizeImage not in torch_ops and torch_ops[-1] is ModuleWrapper


# ------------------------------------------------------------------ writers


def test_write_cifar10_beton_counts(cifar_betons):
    assert ffcv_io.beton_num_samples(cifar_betons["train"]) == CIFAR_TRAIN_SIZE
    assert ffcv_io.beton_num_samples(cifar_betons["test"]) == CIFAR_TEST_SIZE
    assert _no_temp_files(cifar_betons["train"].parent)


def test_write_imagenet_beton_counts(imagenet_jpg_beton, imagenet_default_beton):
    for beton in (imagenet_jpg_beton, imagenet_default_beton):
        assert ffcv_io.beton_num_samples(beton) == IMAGES_PER_CLASS * len(CLASSES)
        assert _no_temp_files(beton.parent)


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_write_fails_cleanly_on_corrupt_jpeg(image_folder, tmp_path):
    broken = tmp_path / "broken"
    for name in CLASSES:
        (broken / name).mkdir(parents=True)
        for src in sorted((image_folder / name).iterdir())[:2]:
            (broken / name / src.name).write_bytes(src.read_bytes())
    (broken / CLASSES[0] / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    out = tmp_path / "out" / "broken.beton"
    with pytest.raises(ffcv_io.BetonWriteError, match=r"corrupt\.jpg\): (OSError|UnidentifiedImageError)"):
        ffcv_io.write_imagenet_beton(broken, out, num_workers=2)
    assert not out.exists()
    assert _no_temp_files(out.parent)


def test_cli_help_and_write_cifar10(cifar, tmp_path):
    cifar_dir, _ = cifar
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "bench_powerprop.data.ffcv_io"]
    help_text = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, check=True).stdout
    assert "write-cifar10" in help_text and "write-imagenet" in help_text
    out = tmp_path / "cli" / "test.beton"
    arguments = ["write-cifar10", "--src", str(cifar_dir), "--split", "test", "--out", str(out), "--num-workers", "1"]
    result = subprocess.run([*command, *arguments], check=False, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert ffcv_io.beton_num_samples(out) == CIFAR_TEST_SIZE
    arguments = ["write-cifar10", "--src", str(tmp_path / "missing"), "--split", "test", "--out", str(out)]
    bad = subprocess.run([*command, *arguments], check=False, capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "error" in bad.stderr


def test_write_command_runs_the_datasets_own_writer(cifar, image_folder, tmp_path):
    """``write`` (what the workflow's write_beton rule runs) writes each declared file with the dataset's writer."""
    import json

    cifar_dir, source = cifar
    for stem, size in (("train", CIFAR_TRAIN_SIZE), ("test", CIFAR_TEST_SIZE)):
        out = tmp_path / "cifar10" / f"{stem}.beton"
        arguments = ["write", "--data", json.dumps({"name": "cifar10", "root": str(cifar_dir)}), "--stem", stem, "--out", str(out)]
        assert ffcv_io.main([*arguments, "--num-workers", "1"]) == 0
        assert ffcv_io.beton_num_samples(out) == size == len(source[stem][1])
    settings = {"max_resolution": 48, "write_mode": "raw", "jpeg_quality": 90, "compress_probability": 0.5, "chunksize": 100}
    data = {"name": "imagenet", "train_dir": str(image_folder), "val_dir": str(image_folder), "beton": settings}
    out = tmp_path / "imagenet" / "val.beton"
    assert ffcv_io.main(["write", "--data", json.dumps(data), "--stem", "val", "--out", str(out), "--num-workers", "1"]) == 0
    from ffcv.reader import Reader

    assert Reader(str(out)).num_samples == IMAGES_PER_CLASS * len(CLASSES)
    heights = Reader(str(out)).metadata["f0"]["height"]
    assert heights.max() <= 48 and heights.max() > 0  # the dataset's write settings (max_resolution) reached FFCV


@pytest.mark.parametrize("data, stem, named", [
    ({"name": "cifar10", "root": "."}, "val", "--stem"),  # cifar10 declares train and test only
    ({"name": "digits"}, "train", "--stem"),  # an in-memory dataset declares no .beton
    ({"name": "nope"}, "train", "--data"),
])
def test_write_command_refuses_what_the_dataset_does_not_declare(data, stem, named, tmp_path, capsys):
    import json

    assert ffcv_io.main(["write", "--data", json.dumps(data), "--stem", stem, "--out", str(tmp_path / "x.beton")]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {named}:") and "\n" not in error and not (tmp_path / "x.beton").exists()


# ------------------------------------------------------------------ loaders


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_cifar_val_loader_returns_exact_normalised_pixels(cifar, cifar_betons):
    _, source = cifar
    loader = ffcv_io.make_loader(cifar_betons["test"], batch_size=4, train=False, style="cifar", num_workers=2)
    images_out, labels_out = [], []
    for images, labels in loader:
        assert images.dtype == torch.float32 and images.shape[1:] == (3, 32, 32)
        assert labels.dtype == torch.int64 and labels.dim() == 1
        images_out.append(images.clone())
        labels_out.append(labels.clone())
    images = torch.cat(images_out).numpy()
    labels = torch.cat(labels_out).numpy()
    np.testing.assert_array_equal(labels, source["test"][1])  # sequential order, no drop_last
    expected = (source["test"][0].astype(np.float32) - np.float32(ffcv_io.CIFAR10_MEAN)) / np.float32(ffcv_io.CIFAR10_STD)
    np.testing.assert_allclose(images, expected.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_cifar_train_loader_shapes_and_drop_last(cifar, cifar_betons):
    _, source = cifar
    loader = ffcv_io.make_loader(cifar_betons["train"], batch_size=8, train=True, style="cifar", num_workers=2)
    assert len(loader) == CIFAR_TRAIN_SIZE // 8
    shapes, labels = _collect(loader, epochs=2)
    assert set(shapes) == {((8, 3, 32, 32), torch.float32, torch.int64, 1)}
    assert len(labels) == 2 * (CIFAR_TRAIN_SIZE // 8) * 8
    assert set(labels) <= set(source["train"][1].tolist())


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_imagenet_train_loader_random_resized_crop(imagenet_jpg_beton):
    loader = ffcv_io.make_loader(imagenet_jpg_beton, batch_size=4, train=True, image_size=32, num_workers=2,
                                 os_cache=True, drop_last=False)
    labels = []
    for images, batch_labels in loader:
        assert tuple(images.shape) == (4, 3, 32, 32) and images.dtype == torch.float32
        assert images.is_contiguous(memory_format=torch.channels_last)
        assert torch.isfinite(images).all() and images.abs().max() < 10  # normalised, not 0..255
        assert batch_labels.dtype == torch.int64 and batch_labels.dim() == 1
        labels.extend(batch_labels.tolist())
    assert sorted(labels) == [0] * IMAGES_PER_CLASS + [1] * IMAGES_PER_CLASS


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_imagenet_val_loader_jit_and_torch_normalisation_agree(imagenet_default_beton):
    outputs = {}
    for mode in ("jit", "torch"):
        loader = ffcv_io.make_loader(imagenet_default_beton, batch_size=5, train=False, image_size=48,
                                     num_workers=2, normalize=mode)
        batches = [(images.clone(), labels.clone()) for images, labels in loader]
        assert [tuple(b[0].shape) for b in batches] == [(5, 3, 48, 48), (5, 3, 48, 48), (2, 3, 48, 48)]
        outputs[mode] = (torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches]))
    assert outputs["jit"][1].tolist() == [0] * IMAGES_PER_CLASS + [1] * IMAGES_PER_CLASS
    assert torch.equal(outputs["jit"][1], outputs["torch"][1])
    torch.testing.assert_close(outputs["jit"][0], outputs["torch"][0], rtol=1e-5, atol=1e-5)


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_quasi_random_order_without_os_cache_visits_every_sample(imagenet_default_beton):
    from ffcv.loader import OrderOption

    assert ffcv_io.resolve_order(None, train=True, os_cache=False, distributed=False) == OrderOption.QUASI_RANDOM
    assert ffcv_io.resolve_order(None, train=True, os_cache=True, distributed=False) == OrderOption.RANDOM
    assert ffcv_io.resolve_order(None, train=True, os_cache=False, distributed=True) == OrderOption.RANDOM
    loader = ffcv_io.make_loader(imagenet_default_beton, batch_size=4, train=True, image_size=32, num_workers=2,
                                 os_cache=False, drop_last=False)
    assert loader.traversal_order.__class__.__name__ == "QuasiRandom"
    _, labels = _collect(loader)
    assert sorted(labels) == [0] * IMAGES_PER_CLASS + [1] * IMAGES_PER_CLASS


@pytest.mark.timeout(LOADER_TIMEOUT)
def test_distributed_loader_single_process_group(imagenet_default_beton, tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        loader = ffcv_io.make_loader(imagenet_default_beton, batch_size=4, train=True, image_size=32,
                                     num_workers=2, distributed=True, drop_last=False)
        _, labels = _collect(loader)
    finally:
        dist.destroy_process_group()
    assert sorted(labels) == [0] * IMAGES_PER_CLASS + [1] * IMAGES_PER_CLASS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.timeout(LOADER_TIMEOUT)
def test_cuda_loader(imagenet_default_beton):
    loader = ffcv_io.make_loader(imagenet_default_beton, batch_size=4, train=True, image_size=32,
                                 device="cuda", num_workers=2)
    images, labels = next(iter(loader))
    assert images.is_cuda and labels.is_cuda
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
