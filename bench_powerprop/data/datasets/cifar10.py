"""``cifar10``: CIFAR-10 from the python pickles, read through FFCV ``.beton`` files the workflow writes.

See ``bench_powerprop.data.vision`` for splits, pipelines and resuming.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS, DatasetOptions
from bench_powerprop.options import boolean, integer, option, text


@dataclass(frozen=True)
class Cifar10Options(DatasetOptions):
    root: str = option(None, "directory of the CIFAR-10 python pickles (cifar-10-batches-py)", check=text())
    num_classes: int = option(10, "classes of the output layer", check=integer(minimum=2))
    eval_batch_size: int = option(256, "batch size of evaluation", check=integer(minimum=1))
    num_workers: int | None = option(None, "FFCV loader threads per process (default: cores / processes)",
                                     check=integer(minimum=1, nullable=True))
    os_cache: bool | None = option(None, "read the .beton through the OS page cache (default: when it fits in "
                                   "half the RAM)", check=boolean())
    train_beton: str | None = option(None, "set by the workflow: the training .beton", check=text(nullable=True))
    test_beton: str | None = option(None, "set by the workflow: the test .beton", check=text(nullable=True))


@DATASETS.register("cifar10", options=Cifar10Options)
def build_cifar10(data: dict):
    from bench_powerprop.data.vision import FfcvVisionTask

    return FfcvVisionTask(data)
