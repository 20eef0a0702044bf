"""Write and read FFCV ``.beton`` files (CIFAR-10 pickles, ImageNet-style folders).

``ffcv`` (and torch/torchvision) are imported lazily inside the functions, so
importing this module is cheap and works where ffcv is not installed; install
it with ``scripts/install_ffcv.sh``.

Two FFCV 1.0.2 pitfalls shape this module:

* The Loader hangs forever at 100% CPU (inside ``Loader.__init__``, in
  ``ffcv.pipeline.graph.Graph.group_operations``) whenever a JIT-compiled
  operation comes *after* a non-JIT one in a pipeline, i.e. more than one
  JIT -> Python -> JIT switch.  On CPU, ``NormalizeImage`` is JIT-compiled
  while ``ToTensor`` switches to Python mode, so FFCV's published order
  ``... ToTensor, ToDevice, ToTorchImage, NormalizeImage`` hangs on CPU.
  See :func:`image_pipeline` for the orders used instead.
* ``DatasetWriter`` spins forever when a worker process dies (e.g. on a
  corrupt JPEG).  Samples are therefore read through
  :class:`_ErrorReportingDataset`, which reports the first failure and lets
  the write finish, after which :func:`write_beton` raises.

CLI::

    python -m bench_powerprop.data.ffcv_io write --data '{"name": "cifar10", "root": DIR}' --stem train --out FILE
    python -m bench_powerprop.data.ffcv_io write-cifar10 --src DIR --split train --out FILE
    python -m bench_powerprop.data.ffcv_io write-imagenet --src DIR --out FILE

``write`` is what the workflow's ``write_beton`` rule runs for any dataset that declares .beton
files (``data/datasets/_ffcv.py``): the dataset's own ``write_beton`` writes the file ``stem``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Pixel statistics in 0..255 units, as FFCV's NormalizeImage expects.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
CIFAR10_MEAN = (125.307, 122.961, 113.8575)
CIFAR10_STD = (51.5865, 50.847, 51.255)

# FFCV's ImageNet recipe: validation images are resized so that the centre
# crop covers 224/256 of the shorter side.
DEFAULT_CENTER_CROP_RATIO = 224 / 256
DEFAULT_IMAGENET_IMAGE_SIZE = 224
CIFAR_TRANSLATE_PADDING = 4

CIFAR10_SPLIT_FILES = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR10_IMAGE_SHAPE = (3, 32, 32)
IMAGE_WRITE_MODES = ("raw", "jpg", "smart", "proportion")
PIPELINE_STYLES = ("imagenet", "cifar")
NORMALIZE_MODES = ("auto", "jit", "torch")


class BetonWriteError(RuntimeError):
    """A sample could not be read or encoded while writing a .beton file."""


# --------------------------------------------------------------------------
# helpers


def default_num_workers() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def beton_num_samples(beton_path: str | os.PathLike) -> int:
    """Number of samples stored in a .beton file."""
    from ffcv.reader import Reader

    return int(Reader(str(beton_path)).num_samples)


def _as_rgb_uint8(image: Any) -> np.ndarray:
    """PIL image or array -> contiguous H x W x 3 uint8 array (or ValueError)."""
    if hasattr(image, "convert") and getattr(image, "mode", "RGB") != "RGB":
        image = image.convert("RGB")
    array = np.ascontiguousarray(np.asarray(image))
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(
            f"expected an H x W x 3 uint8 RGB image, got dtype={array.dtype} shape={array.shape}"
        )
    return array


class ArrayImageDataset:
    """Indexable (image, label) pairs over an N x H x W x 3 uint8 array."""

    def __init__(self, images: np.ndarray, labels: Sequence[int]):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self.images[index], int(self.labels[index])


class _ErrorReportingDataset:
    """Wraps an (image, label) dataset for FFCV's DatasetWriter worker processes.

    FFCV's writer waits forever for a worker that died, so instead of raising,
    a failing sample records its traceback in ``error_file`` (first failure
    wins) and is replaced by a 1x1 placeholder; the caller checks the file
    after the write and discards the output.
    """

    PLACEHOLDER = (np.zeros((1, 1, 3), dtype=np.uint8), 0)

    def __init__(self, dataset: Any, error_file: str):
        self.dataset = dataset
        self.error_file = error_file

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        if os.path.exists(self.error_file):  # already failed: skip the work
            return self.PLACEHOLDER
        try:
            image, label = self.dataset[index]
            return _as_rgb_uint8(image), int(label)
        except Exception as error:
            self._record_error(index, error)
            return self.PLACEHOLDER

    def describe_sample(self, index: int) -> str:
        samples = getattr(self.dataset, "samples", None)  # torchvision ImageFolder
        if samples is not None:
            return f"sample {index} ({samples[index][0]})"
        return f"sample {index}"

    def _record_error(self, index: int, error: Exception) -> None:
        try:
            fd = os.open(self.error_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{self.describe_sample(index)}: {type(error).__name__}: {error}\n\n")
            handle.write(traceback.format_exc())


def _temporary_sibling(out_path: Path) -> str:
    """Create an empty temp file next to ``out_path`` (same filesystem)."""
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _remove_if_exists(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_beton(
    dataset: Any,
    out_path: str | os.PathLike,
    fields: dict[str, Any],
    num_workers: int | None = None,
    chunksize: int = 100,
) -> Path:
    """Write an indexable ``(image, label)`` dataset atomically to ``out_path``.

    The file is written to a temporary sibling and moved into place with
    ``os.replace`` only after FFCV finished, so ``out_path`` never holds a
    partial file.  Raises :class:`BetonWriteError` if any sample failed.
    """
    from ffcv.writer import DatasetWriter

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(num_workers or default_num_workers(), max(1, len(dataset))))
    tmp = _temporary_sibling(out_path)
    error_file = tmp + ".error"
    try:
        writer = DatasetWriter(tmp, fields, num_workers=workers)
        writer.from_indexed_dataset(_ErrorReportingDataset(dataset, error_file), chunksize=chunksize)
        if os.path.exists(error_file):
            message = Path(error_file).read_text()
            raise BetonWriteError(f"could not write {out_path}: {message}")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_path)
    finally:
        _remove_if_exists(tmp)
        _remove_if_exists(error_file)
    return out_path


# --------------------------------------------------------------------------
# writers


def resolve_cifar10_dir(cifar_dir: str | os.PathLike) -> Path:
    """Directory holding ``data_batch_*``; accepts its parent too."""
    cifar_dir = Path(cifar_dir)
    nested = cifar_dir / "cifar-10-batches-py"
    if not (cifar_dir / "test_batch").exists() and nested.is_dir():
        return nested
    return cifar_dir


#: The only globals a CIFAR-10 batch pickle may name: numpy's array and scalar reconstruction (NumPy 1 and 2
#: names), and ``_codecs.encode``, which protocol-2 pickles written by Python 3 use to rebuild ``bytes``.
CIFAR10_PICKLE_GLOBALS = frozenset(
    (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles containers, numbers, strings and numpy arrays only: a pickle naming any other global
    (``os.system``, ``builtins.eval``, ...), which is how a pickle runs code, is refused before it is called.

    CIFAR-10's python version is a pickle, so this is the most restricted reading the format allows;
    the files must still come from a trusted source (docs/security.md).
    """

    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR10_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refused: the pickle names {module}.{name}, not a numpy array")
        return super().find_class(module, name)


def load_cifar10_batch(batch_file: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python pickle -> (N x 32 x 32 x 3 uint8 images, int64 labels), read by ``ArrayOnlyUnpickler``."""
    with open(batch_file, "rb") as handle:
        try:
            batch = ArrayOnlyUnpickler(handle, encoding="bytes").load()
        except pickle.UnpicklingError as error:
            raise ValueError(f"{batch_file}: {error}") from None
    if not isinstance(batch, dict):
        raise ValueError(f"{batch_file}: a CIFAR-10 batch is a dict, got {type(batch).__name__}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    flat_size = int(np.prod(CIFAR10_IMAGE_SHAPE))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != flat_size:
        raise ValueError(f"{batch_file}: b'data' must be uint8 N x {flat_size}, got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise ValueError(f"{batch_file}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, *CIFAR10_IMAGE_SHAPE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar10_split(cifar_dir: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All batches of a CIFAR-10 split ("train" or "test"), concatenated."""
    if split not in CIFAR10_SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(CIFAR10_SPLIT_FILES)}, got {split!r}")
    root = resolve_cifar10_dir(cifar_dir)
    missing = [name for name in CIFAR10_SPLIT_FILES[split] if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 {split} batches missing in {root}: {', '.join(missing)}")
    batches = [load_cifar10_batch(root / name) for name in CIFAR10_SPLIT_FILES[split]]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return images, labels


def write_cifar10_beton(
    cifar_dir: str | os.PathLike,
    split: str,
    out_path: str | os.PathLike,
    num_workers: int | None = None,
) -> Path:
    """CIFAR-10 python pickles -> .beton with fields ``image`` (raw RGB) and ``label``."""
    return write_image_arrays(*load_cifar10_split(cifar_dir, split), out_path, num_workers)


def write_image_arrays(
    images: np.ndarray,
    labels: Sequence[int],
    out_path: str | os.PathLike,
    num_workers: int | None = None,
) -> Path:
    """N x H x W x 3 uint8 images and their labels -> .beton with fields ``image`` (raw RGB) and ``label``."""
    from ffcv.fields import IntField, RGBImageField

    fields = {"image": RGBImageField(), "label": IntField()}
    return write_beton(ArrayImageDataset(images, labels), out_path, fields, num_workers)


def imagenet_image_field(
    max_resolution: int | None = 256,
    jpeg_quality: int = 90,
    compress_probability: float = 0.5,
    write_mode: str = "proportion",
) -> Any:
    """RGBImageField with FFCV's ImageNet settings (see ``write_imagenet_beton``)."""
    from ffcv.fields import RGBImageField

    if write_mode not in IMAGE_WRITE_MODES:
        raise ValueError(f"write_mode must be one of {IMAGE_WRITE_MODES}, got {write_mode!r}")
    if not 0.0 <= compress_probability <= 1.0:
        raise ValueError(f"compress_probability must be in [0, 1], got {compress_probability}")
    return RGBImageField(
        write_mode=write_mode,
        max_resolution=max_resolution,
        jpeg_quality=jpeg_quality,
        compress_probability=compress_probability,
    )


def write_imagenet_beton(
    folder: str | os.PathLike,
    out_path: str | os.PathLike,
    max_resolution: int | None = 256,
    jpeg_quality: int = 90,
    compress_probability: float = 0.5,
    write_mode: str = "proportion",
    num_workers: int | None = None,
    chunksize: int = 100,
) -> Path:
    """ImageFolder tree (``folder/<class>/<image>``) -> .beton (``image``, ``label``).

    Defaults follow FFCV's published ImageNet conversion: longest side resized
    down to ``max_resolution``, a ``compress_probability`` share of images
    stored as JPEG of quality ``jpeg_quality`` and the rest as raw pixels.
    Labels are the indices of the sorted class directory names.
    """
    from ffcv.fields import IntField
    from torchvision.datasets import ImageFolder

    field = imagenet_image_field(max_resolution, jpeg_quality, compress_probability, write_mode)
    dataset = ImageFolder(str(folder))
    fields = {"image": field, "label": IntField()}
    return write_beton(dataset, out_path, fields, num_workers, chunksize)


# --------------------------------------------------------------------------
# loading


def torch_normalize_module(mean: Sequence[float], std: Sequence[float], device: Any) -> Any:
    """torch module: uint8/float N x C x H x W -> float32 ``(x - mean) / std`` on ``device``."""
    import torch

    class NormalizeToFloat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return (images.float() - self.mean) / self.std

    return NormalizeToFloat().to(device)


def _resolve_normalize_mode(normalize: str, device: Any) -> str:
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be one of {NORMALIZE_MODES}, got {normalize!r}")
    if normalize == "auto":
        return "jit" if device.type == "cpu" else "torch"
    if normalize == "jit" and device.type != "cpu":
        raise ValueError("normalize='jit' is for CPU loaders; use 'torch' on other devices")
    return normalize


def image_decoder_ops(train: bool, style: str, image_size: int | None, crop_ratio: float, mean: Sequence[float]) -> list:
    """Decoder and uint8 augmentations (all JIT ops, before ``ToTensor``)."""
    from ffcv.fields.decoders import (
        CenterCropRGBImageDecoder,
        RandomResizedCropRGBImageDecoder,
        SimpleRGBImageDecoder,
    )
    from ffcv.transforms import RandomHorizontalFlip, RandomTranslate

    if style == "cifar":  # stored resolution; SimpleRGBImageDecoder needs equal-size images
        if not train:
            return [SimpleRGBImageDecoder()]
        fill = tuple(round(m) for m in mean)
        return [SimpleRGBImageDecoder(), RandomHorizontalFlip(), RandomTranslate(CIFAR_TRANSLATE_PADDING, fill=fill)]
    size = (image_size, image_size)
    if train:
        return [RandomResizedCropRGBImageDecoder(size), RandomHorizontalFlip()]
    return [CenterCropRGBImageDecoder(size, ratio=crop_ratio)]


def image_pipeline(
    train: bool,
    device: Any = "cpu",
    image_size: int | None = None,
    style: str = "imagenet",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    crop_ratio: float = DEFAULT_CENTER_CROP_RATIO,
    channels_last: bool = True,
    normalize: str = "auto",
) -> list:
    """FFCV operations turning the ``image`` field into float32 N x C x H x W.

    FFCV's published order is ``decoder, flip, ToTensor, ToDevice,
    ToTorchImage, NormalizeImage``.  On CPU, ``NormalizeImage`` is a JIT op
    and placing it after ``ToTensor`` (a switch to Python mode) makes FFCV
    1.0.2's ``Loader`` loop forever while building its stages.  Therefore:

    * ``normalize="jit"`` (default on CPU): ``NormalizeImage`` runs on the
      uint8 H x W x C batch *before* ``ToTensor``, together with the other
      JIT ops; the result is already float32 and normalised.
    * ``normalize="torch"`` (default on other devices): after
      ``ToTorchImage`` a small torch module casts to float32 and normalises
      on ``device``.  This needs no cupy (which FFCV's GPU ``NormalizeImage``
      imports) and works on CPU too.
    """
    import torch
    from ffcv.transforms import ModuleWrapper, NormalizeImage, ToDevice, ToTensor, ToTorchImage

    if style not in PIPELINE_STYLES:
        raise ValueError(f"style must be one of {PIPELINE_STYLES}, got {style!r}")
    device = torch.device(device)
    mean = tuple(mean if mean is not None else (CIFAR10_MEAN if style == "cifar" else IMAGENET_MEAN))
    std = tuple(std if std is not None else (CIFAR10_STD if style == "cifar" else IMAGENET_STD))
    if image_size is None:
        image_size = DEFAULT_IMAGENET_IMAGE_SIZE
    ops = image_decoder_ops(train, style, image_size, crop_ratio, mean)
    to_torch = [ToTensor(), ToDevice(device, non_blocking=True), ToTorchImage(channels_last=channels_last)]
    if _resolve_normalize_mode(normalize, device) == "jit":
        return [*ops, NormalizeImage(np.array(mean), np.array(std), np.float32), *to_torch]
    return ops + to_torch + [ModuleWrapper(torch_normalize_module(mean, std, device))]


def label_pipeline(device: Any = "cpu") -> list:
    """FFCV operations turning the ``label`` field into a 1-D int64 tensor."""
    import torch
    from ffcv.fields.decoders import IntDecoder
    from ffcv.transforms import Squeeze, ToDevice, ToTensor

    # Squeeze(1), not Squeeze(): a final batch of one sample stays 1-D.
    return [IntDecoder(), ToTensor(), Squeeze(1), ToDevice(torch.device(device), non_blocking=True)]


def default_os_cache(beton_path: str | os.PathLike) -> bool:
    """Use the OS page cache when the file fits in half of the physical memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return True
    return os.path.getsize(beton_path) <= memory // 2


def resolve_order(order: Any, train: bool, os_cache: bool, distributed: bool) -> Any:
    """``OrderOption`` from a name/option, or FFCV's recommended default.

    Default: validation SEQUENTIAL; training QUASI_RANDOM when the file is not
    OS-cached (large sets; FFCV does not support it with ``distributed``),
    otherwise RANDOM.
    """
    from ffcv.loader import OrderOption

    if order is None:
        if not train:
            return OrderOption.SEQUENTIAL
        return OrderOption.QUASI_RANDOM if not os_cache and not distributed else OrderOption.RANDOM
    if isinstance(order, str):
        return OrderOption[order.upper()]
    return order


def make_loader(
    beton_path: str | os.PathLike,
    batch_size: int,
    train: bool,
    device: Any = "cpu",
    image_size: int | None = None,
    distributed: bool = False,
    seed: int = 0,
    num_workers: int | None = None,
    order: Any = None,
    os_cache: bool | None = None,
    drop_last: bool | None = None,
    style: str = "imagenet",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    crop_ratio: float = DEFAULT_CENTER_CROP_RATIO,
    channels_last: bool = True,
    normalize: str = "auto",
    indices: Sequence[int] | None = None,
    batches_ahead: int = 3,
) -> Any:
    """FFCV ``Loader`` yielding ``(images, labels)`` batches.

    ``images``: float32 N x 3 x H x W (channels_last memory format by default),
    normalised with ``mean``/``std`` (0..255 units); ``labels``: int64, 1-D.

    ``style="imagenet"`` (FFCV's ImageNet pipelines): train =
    RandomResizedCrop(``image_size``, default 224) + horizontal flip, val =
    centre crop of ``crop_ratio`` resized to ``image_size``.
    ``style="cifar"``: stored resolution; train = flip + 4-pixel random
    translation, val = no augmentation (``image_size`` is ignored).

    Defaults: ``os_cache`` = file fits in half the RAM; ``order`` see
    :func:`resolve_order`; ``drop_last`` = ``train``; ``num_workers`` = CPU
    cores.  ``distributed=True`` is passed to FFCV (needs an initialised
    ``torch.distributed`` process group).

    FFCV reuses its output buffers: clone a batch if you keep it past the
    next ``batches_ahead`` iterations.
    """
    from ffcv.loader import Loader

    beton_path = str(beton_path)
    if os_cache is None:
        os_cache = default_os_cache(beton_path)
    if drop_last is None:
        drop_last = train
    pipelines = {
        "image": image_pipeline(train, device, image_size, style, mean, std, crop_ratio, channels_last, normalize),
        "label": label_pipeline(device),
    }
    return Loader(
        beton_path,
        batch_size=batch_size,
        num_workers=num_workers or default_num_workers(),
        order=resolve_order(order, train, os_cache, distributed),
        os_cache=os_cache,
        distributed=distributed,
        seed=seed,
        indices=None if indices is None else np.asarray(indices),
        pipelines=pipelines,
        drop_last=drop_last,
        batches_ahead=batches_ahead,
    )


# --------------------------------------------------------------------------
# CLI


def _write_command(commands, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    """A subcommand that writes one .beton: ``--out`` and ``--num-workers``, then its own source arguments."""
    command = commands.add_parser(name, help=help_text, description=description)
    command.add_argument("--out", required=True, help="output .beton path")
    command.add_argument("--num-workers", type=int, default=None, help="writer processes (default: CPU cores)")
    return command


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench_powerprop.data.ffcv_io",
        description="Convert datasets to FFCV .beton files (written atomically: temp file + rename).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    write = _write_command(
        commands,
        "write",
        "one .beton of a registered FFCV dataset, written by the dataset's own writer",
        "Write the .beton file STEM of the dataset that the data config names (its data/datasets module "
        "declares the files and how to write them).",
    )
    write.add_argument("--data", required=True, help="the data config as JSON, e.g. '{\"name\": \"cifar10\", \"root\": DIR}'")
    write.add_argument("--stem", required=True, help="which of the dataset's .beton files (e.g. train, test)")

    cifar = _write_command(
        commands,
        "write-cifar10",
        "CIFAR-10 python pickles -> .beton",
        "Read the CIFAR-10 python batches (data_batch_1..5 or test_batch) and write "
        "a .beton with fields image (raw 32x32 RGB) and label.",
    )
    cifar.add_argument("--src", required=True, help="directory with data_batch_1..5 and test_batch "
                       "(or its parent holding cifar-10-batches-py/)")
    cifar.add_argument("--split", required=True, choices=sorted(CIFAR10_SPLIT_FILES))

    imagenet = _write_command(
        commands,
        "write-imagenet",
        "ImageFolder tree (SRC/<class>/<image>) -> .beton",
        "Read an ImageFolder tree and write a .beton with fields image and label "
        "(label = index of the sorted class directory). Defaults are FFCV's ImageNet settings.",
    )
    imagenet.add_argument("--src", required=True, help="root directory with one sub-directory per class")
    imagenet.add_argument("--max-resolution", type=int, default=256,
                          help="resize so the longest side is at most this (default 256; 0 = keep)")
    imagenet.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality (default 90)")
    imagenet.add_argument("--compress-probability", type=float, default=0.5,
                          help="share of images stored as JPEG in 'proportion' mode (default 0.5)")
    imagenet.add_argument("--write-mode", choices=IMAGE_WRITE_MODES, default="proportion",
                          help="raw pixels, jpg, smart or proportion (default proportion)")
    imagenet.add_argument("--chunksize", type=int, default=100, help="samples per worker task (default 100)")
    return parser


def write_declared_beton(data_json: str, stem: str, out: str, num_workers: int | None) -> Path:
    """The .beton ``stem`` of the dataset ``data_json`` names, written by its module's ``write_beton``."""
    import json

    from bench_powerprop.data.datasets import DATASETS

    data = json.loads(data_json)
    if not isinstance(data, dict) or data.get("name") not in DATASETS:
        raise ValueError(f"--data: must name a registered dataset ({', '.join(DATASETS.names())}), got {data_json!r}")
    options = DATASETS.options(data["name"]).parse(data, "data")
    if stem not in options.beton_stems():
        raise ValueError(f"--stem: {data['name']} declares the .beton files {options.beton_stems()}, got {stem!r}")
    return Path(options.write_beton(stem, out, num_workers))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_arg_parser().parse_args(argv)
    import ffcv.writer  # noqa: F401 -- a missing vision extra is named before any source data is read
    try:
        if args.command == "write":
            out = write_declared_beton(args.data, args.stem, args.out, args.num_workers)
        elif args.command == "write-cifar10":
            out = write_cifar10_beton(args.src, args.split, args.out, num_workers=args.num_workers)
        else:
            out = write_imagenet_beton(
                args.src,
                args.out,
                max_resolution=args.max_resolution or None,
                jpeg_quality=args.jpeg_quality,
                compress_probability=args.compress_probability,
                write_mode=args.write_mode,
                num_workers=args.num_workers,
                chunksize=args.chunksize,
            )
    except (OSError, ValueError, KeyError, BetonWriteError) as error:  # OptionError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({beton_num_samples(out)} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
