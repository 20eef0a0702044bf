"""``cifar10``: CIFAR-10 from the python pickles, read through FFCV ``.beton`` files the workflow writes.

The workflow writes ``train.beton`` (data_batch_1..5) and ``test.beton`` (test_batch); CIFAR-10 has
no official validation split, so ``val`` is the test set (see ``bench_powerprop.data.vision`` for
pipelines and resuming).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._ffcv import FfcvLoaderOptions
from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import integer, option, text

vision = LazyModule("bench_powerprop.data.vision")
ffcv_io = LazyModule("bench_powerprop.data.ffcv_io")


@dataclass(frozen=True)
class Cifar10Options(FfcvLoaderOptions):
    BETON_OF_SPLIT: ClassVar[dict[str, str]] = {"train": "train", "val": "test", "test": "test"}
    STYLE = "cifar"
    IMAGE_SIZE = 32
    WRITER_OPTIONS = ("root",)
    PATH_OPTIONS = ("root",)

    root: str = option(None, "directory of the CIFAR-10 python pickles (cifar-10-batches-py)", check=text(),
                       identity=False)
    num_classes: int = option(10, "classes of the output layer", check=integer(minimum=2))
    train_beton: str | None = option(None, "set by the workflow: the training .beton", check=text(nullable=True),
                                     identity=False)
    test_beton: str | None = option(None, "set by the workflow: the test .beton", check=text(nullable=True),
                                    identity=False)

    def beton_sources(self, stem):
        root = ffcv_io.resolve_cifar10_dir(self.root)
        return [str(root / name) for name in ffcv_io.CIFAR10_SPLIT_FILES[stem]]

    def write_beton(self, stem, out, num_workers=None):
        return ffcv_io.write_cifar10_beton(self.root, stem, out, num_workers)


@DATASETS.register("cifar10", options=Cifar10Options)
def build_cifar10(data: dict):
    return vision.FfcvVisionTask(data, Cifar10Options)
