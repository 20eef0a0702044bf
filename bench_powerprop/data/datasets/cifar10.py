"""``cifar10``: CIFAR-10 from the python pickles, read through FFCV ``.beton`` files the workflow writes.

See ``bench_powerprop.data.vision`` for splits, pipelines and resuming.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._ffcv import FfcvLoaderOptions
from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import integer, option, text

vision = LazyModule("bench_powerprop.data.vision")


@dataclass(frozen=True)
class Cifar10Options(FfcvLoaderOptions):
    root: str = option(None, "directory of the CIFAR-10 python pickles (cifar-10-batches-py)", check=text(),
                       identity=False)
    num_classes: int = option(10, "classes of the output layer", check=integer(minimum=2))
    train_beton: str | None = option(None, "set by the workflow: the training .beton", check=text(nullable=True),
                                     identity=False)
    test_beton: str | None = option(None, "set by the workflow: the test .beton", check=text(nullable=True),
                                    identity=False)


@DATASETS.register("cifar10", options=Cifar10Options)
def build_cifar10(data: dict):
    return vision.FfcvVisionTask(data)
