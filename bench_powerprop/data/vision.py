"""CIFAR-10 and ImageNet read through FFCV ``.beton`` files (the task behind ``data.name`` cifar10/imagenet).

The workflow's ``ffcv.smk`` rules write the ``.beton`` files from the user's local data and
put their paths into the training spec; this module only reads them (ffcv, numba and the
loaders are imported lazily, so building the task, e.g. to rebuild a model, is cheap).

Data config (``experiments.<name>.data``)::

    name: cifar10                 # or imagenet
    root: DIR                     # cifar10: the python pickles (must exist; read by the beton rule)
    train_dir: DIR                # imagenet: ImageFolder trees (must exist; read by the beton rule)
    val_dir: DIR
    train_beton: FILE             # set by the workflow: cifar10 train_beton + test_beton,
    test_beton: FILE              #   imagenet train_beton + val_beton
    image_size: 224               # imagenet: train resolution (RandomResizedCrop); cifar10 keeps 32
    val_image_size: 224           # imagenet: centre crop of crop_ratio, resized to this
    crop_ratio: 0.875             # imagenet: 224/256, FFCV's (and torchvision's) validation crop
    num_classes: 1000             # default 10 (cifar10) / 1000 (imagenet)
    eval_batch_size: 256
    num_workers: N                # default: CPU cores / processes on the node
    os_cache: true                # default: the file fits in half of the RAM (see ffcv_io)
    beton: {...}                  # imagenet write settings, used by the beton rule only

Splits: CIFAR-10 has no official validation split and ImageNet's public validation set is
the test set of every sparse-training paper (RigL, Top-KAST, Powerprop), so ``val`` and
``test`` are both the CIFAR-10 test batch / the ImageNet validation set; the accuracy is
computed once and reused while the model is unchanged.

Pipelines are ``ffcv_io``'s: FFCV's ImageNet pipelines (RandomResizedCrop + flip / centre
crop) and the CIFAR ones (flip + 4-pixel translation), normalised with the dataset mean/std,
batches delivered on the training device (channels-last when the trainer asks for it).

Under torchrun the training loader is FFCV's ``distributed=True`` loader (each rank gets a
disjoint share of every epoch, with the per-rank batch size), and evaluation splits the
evaluation set into disjoint strided shards whose correct counts are summed over ranks (no
sample counted twice, unlike a padded distributed sampler).

Resuming: the training state is (epoch, batch index). FFCV draws each epoch's order from
``seed`` and the epoch number, so a resumed run sees exactly the samples of an uninterrupted
one, in the same order. FFCV 1.0.2's random augmentations (crop, flip, translate) draw from
numpy's global generator inside numba worker threads and cannot be seeded, so image pixels
after a resume, and therefore the weights, are not bitwise those of an uninterrupted run.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

DEFAULT_EVAL_BATCH_SIZE = 256


class FfcvBatches:
    """Endless training batches from an FFCV loader; state = (epoch, batch index within it).

    On resume the loader restarts that epoch (its order is seeded by ``seed`` + epoch) and the
    batches already trained on are drawn and dropped.
    """

    def __init__(self, loader):
        self.loader = loader
        self.epoch, self.batch_index = 0, 0
        self._iterator = None
        if len(loader) == 0:
            raise ValueError("data: the training set holds fewer samples than one batch")

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._iterator is None:
            self._iterator = self._open_epoch()
        batch = next(self._iterator, None)
        if batch is None:
            self.epoch, self.batch_index = self.epoch + 1, 0
            self._iterator = self._open_epoch()
            batch = next(self._iterator)
        self.batch_index += 1
        return batch

    def _open_epoch(self):
        self.loader.next_epoch = self.epoch
        iterator = iter(self.loader)
        for _ in range(self.batch_index):
            next(iterator, None)
        return iterator

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch_index": self.batch_index}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch_index = int(state["epoch"]), int(state["batch_index"])
        self._iterator = None


def model_fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced or modified in place (optimizer steps included)."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


class FfcvVisionTask:
    """A dataset read from the workflow's .beton files with FFCV; ``declared``: its options class
    (``datasets._ffcv.FfcvLoaderOptions``: the .beton of each split, the pipeline style, the default resolution)."""

    shards_across_ranks = True  # the FFCV loader shards the data itself under torchrun

    def __init__(self, data_cfg: dict, declared):
        self.cfg = data_cfg
        self.style, self.beton_of_split = declared.STYLE, declared.BETON_OF_SPLIT
        self.num_classes = int(data_cfg["num_classes"])
        self.image_size = int(data_cfg.get("image_size") or declared.IMAGE_SIZE)
        self.val_image_size = int(data_cfg.get("val_image_size") or self.image_size)
        self.input_shape = (3, self.image_size, self.image_size)
        self.eval_batch_size = int(data_cfg.get("eval_batch_size") or DEFAULT_EVAL_BATCH_SIZE)
        self.device, self.channels_last = torch.device("cpu"), False
        self._eval_loaders: dict[str, object] = {}
        self._last_accuracy: tuple | None = None

    def set_device(self, device: torch.device, channels_last: bool = False) -> None:
        """Where batches are delivered (called by the trainer before any loader is built)."""
        self.device, self.channels_last = torch.device(device), bool(channels_last)
        self._eval_loaders.clear()

    # -- files and loaders ---------------------------------------------------------------
    def beton(self, split: str) -> str:
        key = f"{self.beton_of_split[split]}_beton"
        path = self.cfg.get(key)
        if not path:
            raise ValueError(f"data.{key}: not set; the workflow's ffcv rules write the .beton files and pass their paths")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"data.{key}: {path} does not exist (written by the workflow's ffcv rules)")
        return path

    def num_workers(self) -> int:
        from bench_powerprop.data.ffcv_io import default_num_workers
        from bench_powerprop.distributed import local_world_size

        return int(self.cfg.get("num_workers") or max(1, default_num_workers() // local_world_size()))

    def _loader(self, path: str, batch_size: int, train: bool, **options):
        from bench_powerprop.data.ffcv_io import make_loader

        return make_loader(
            path, batch_size, train=train, device=self.device, style=self.style,
            num_workers=self.num_workers(), os_cache=self.cfg.get("os_cache"),
            crop_ratio=self.cfg.get("crop_ratio") or 224 / 256, channels_last=self.channels_last, **options,
        )

    def train_batches(self, batch_size: int, seed: int) -> FfcvBatches:
        """Training batches of ``batch_size`` per process (FFCV ``distributed=True`` under torchrun)."""
        from bench_powerprop.distributed import current_context

        distributed = current_context().is_distributed
        loader = self._loader(self.beton("train"), batch_size, True, image_size=self.image_size,
                              distributed=distributed, seed=seed)
        return FfcvBatches(loader)

    def _eval_loader(self, path: str):
        """Sequential, unaugmented loader over this rank's strided shard of ``path``."""
        if path not in self._eval_loaders:
            from bench_powerprop.data.ffcv_io import beton_num_samples
            from bench_powerprop.distributed import current_context

            ctx = current_context()
            indices = np.arange(ctx.rank, beton_num_samples(path), ctx.world_size) if ctx.is_distributed else None
            self._eval_loaders[path] = self._loader(path, self.eval_batch_size, False, image_size=self.val_image_size,
                                                    indices=indices)
        return self._eval_loaders[path]

    # -- evaluation ----------------------------------------------------------------------
    @torch.no_grad()
    def accuracy(self, model: nn.Module, split: str) -> float:
        """Top-1 accuracy over the whole split (summed over ranks under torchrun)."""
        path = self.beton(split)
        key = (path, model_fingerprint(model))
        if self._last_accuracy is not None and self._last_accuracy[0] == key:
            return self._last_accuracy[1]
        correct, total = self._count_correct(model, self._eval_loader(path))
        accuracy = correct / max(1.0, total)
        self._last_accuracy = ((path, model_fingerprint(model)), accuracy)
        return accuracy

    def _count_correct(self, model: nn.Module, loader) -> tuple[float, float]:
        from bench_powerprop.distributed import current_context, sum_over_ranks

        was_training = model.training
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        total = 0
        for images, labels in loader:
            correct += (model(images).argmax(dim=1) == labels).sum()
            total += int(labels.numel())
        model.train(was_training)
        return tuple(sum_over_ranks([float(correct), float(total)], current_context(), self.device))
