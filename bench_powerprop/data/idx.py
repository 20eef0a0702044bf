"""MNIST's IDX files: find, check and read them (numpy only; the check is torch- and numpy-free).

``check_mnist_root`` runs in config validation, before any job: every file present, its header
well-formed (magic, dimension sizes) and its size exactly what the header promises, so a
truncated or garbage file is named once instead of failing every training job.
"""

from __future__ import annotations

import gzip
from pathlib import Path

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def find_idx_file(root: Path, stem: str) -> Path:
    """The IDX file ``stem`` in ``root``, plain or gzipped (also accepts the ``.`` → ``-`` variant)."""
    candidates = [stem, stem.replace("-idx", ".idx"), stem + ".gz", stem.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"MNIST file {stem} (or .gz) not found in {root}")


def read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return handle.read()


def idx_shape(raw: bytes, path: Path) -> tuple[int, ...]:
    """The shape in an IDX header; ValueError naming the file when header or size is wrong."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in ITEM_BYTES or not 1 <= raw[3] <= 4:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = 4 + 4 * ndim + ITEM_BYTES[raw[2]] * _product(shape)
    if len(raw) != expected:
        raise ValueError(f"{path} holds {len(raw)} bytes, its header promises {expected} (truncated or corrupt)")
    return shape


def _product(shape) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def read_idx(path: Path):
    """Parse an IDX file (the MNIST format): magic, dimension sizes, then big-endian data."""
    import numpy as np

    raw = read_bytes(path)
    shape = idx_shape(raw, path)
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * len(shape)).reshape(shape)


def check_mnist_root(root: Path) -> str | None:
    """None when ``root`` holds four consistent MNIST IDX files, else what is wrong (one line)."""
    shapes = {}
    try:
        for key, stem in MNIST_FILES.items():
            path = find_idx_file(root, stem)
            shapes[key] = idx_shape(read_bytes(path), path)
    except (FileNotFoundError, ValueError, OSError, EOFError, gzip.BadGzipFile) as error:
        return str(error)
    for split in ("train", "test"):
        images, labels = shapes[f"{split}_images"], shapes[f"{split}_labels"]
        if len(images) != 3 or len(labels) != 1 or images[0] != labels[0]:
            return f"{split} images {images} and labels {labels} do not match (expected N×H×W images and N labels)"
    return None
