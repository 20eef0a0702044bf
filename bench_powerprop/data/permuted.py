"""The tasks of a ``permuted`` data config (``data/datasets/permuted.py`` documents the protocol)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bench_powerprop.data.arrays import ArraySplits, ShuffledBatches
from bench_powerprop.data.tasks import batched_accuracy, build_task


def permutations(num_features: int, tasks: int, seed: int, identity_first: bool) -> list[torch.Tensor | None]:
    """One feature order per task (None: the identity), drawn in task order from one seeded generator."""
    rng = np.random.default_rng(seed)
    orders: list[torch.Tensor | None] = []
    for index in range(tasks):
        orders.append(None if index == 0 and identity_first else torch.as_tensor(rng.permutation(num_features)))
    return orders


def permute(features: torch.Tensor, order: torch.Tensor | None) -> torch.Tensor:
    return features if order is None else features[:, order]


class PermutedBatches(ShuffledBatches):
    """The base dataset's shuffled minibatches with the task's feature order (resumable like them)."""

    def __init__(self, features, labels, batch_size, seed, order):
        super().__init__(features, labels, batch_size, seed)
        self.feature_order = order

    def next_batch(self):
        features, labels = super().next_batch()
        return permute(features, self.feature_order), labels


class PermutedTask:
    """One task of the sequence: the base splits seen through one feature permutation."""

    def __init__(self, splits: ArraySplits, order: torch.Tensor | None):
        self.splits, self.order = splits, order
        self.input_shape = (splits.num_features,)
        self.num_classes = splits.num_classes
        self.train_size = len(splits.y_train)

    def train_batches(self, batch_size: int, seed: int) -> PermutedBatches:
        return PermutedBatches(self.splits.x_train, self.splits.y_train, batch_size, seed, self.order)

    def accuracy(self, model: nn.Module, split: str) -> float:
        features, labels = self.splits.split(split)
        return batched_accuracy(model, permute(features, self.order), labels)


class PermutedSequence:
    """``tasks``: the T permuted tasks, in order; input shape and classes are the base dataset's."""

    def __init__(self, data_cfg: dict):
        base = build_task(data_cfg["base"])
        if not hasattr(base, "splits"):
            raise ValueError(f"data.base: {data_cfg['base']['name']!r} is not held in memory; permuted needs an in-memory dataset")
        orders = permutations(base.splits.num_features, data_cfg["tasks"], data_cfg["permutation_seed"], data_cfg["identity_first"])
        self.tasks = [PermutedTask(base.splits, order) for order in orders]
        self.input_shape, self.num_classes = base.input_shape, base.num_classes
