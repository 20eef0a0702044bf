"""A *task* is what the trainer needs from a dataset: batches to train on and accuracy to report.

``build_task(data_cfg)`` picks the dataset registered under ``data_cfg['name']``: one file per
dataset in ``bench_powerprop/data/datasets/`` declares its options and builds its task.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from bench_powerprop.data.datasets import DATASETS, resolve_data_config


class BatchSource(Protocol):
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Task(Protocol):
    input_shape: tuple[int, ...]
    num_classes: int

    def train_batches(self, batch_size: int, seed: int) -> BatchSource: ...
    def accuracy(self, model: nn.Module, split: str) -> float: ...


def build_task(data_cfg: dict) -> Task:
    """The task of a data config (``name`` picks the registered dataset; defaults filled in)."""
    return DATASETS.get(data_cfg["name"])(resolve_data_config(data_cfg))


@torch.no_grad()
def batched_accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch_size: int = 2048) -> float:
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        logits = model(features[start: start + batch_size])
        correct += int((logits.argmax(dim=1) == labels[start: start + batch_size]).sum())
    model.train(was_training)
    return correct / len(labels)


class ArrayTask:
    """A dataset held in memory as tensors (its module reads the ``ArraySplits``)."""

    def __init__(self, splits):
        self.splits = splits
        self.input_shape = (self.splits.num_features,)
        self.num_classes = self.splits.num_classes
        self.train_size = len(self.splits.y_train)

    def train_batches(self, batch_size: int, seed: int):
        from bench_powerprop.data.arrays import ShuffledBatches

        return ShuffledBatches(self.splits.x_train, self.splits.y_train, batch_size, seed)

    def accuracy(self, model: nn.Module, split: str) -> float:
        return batched_accuracy(model, *self.splits.split(split))

    def held_out_batch(self, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` validation examples (all of them if fewer) drawn once with ``seed``: a fixed probe batch."""
        features, labels = self.splits.split("val")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
        return features[order], labels[order]


