"""``mnist``: MNIST from the four standard IDX files in a local directory (never downloaded).

The official training set is split (seeded, stratified) into train and ``val_size`` validation
images; the official test set is the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS, DatasetOptions
from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import integer, option, text

arrays = LazyModule("bench_powerprop.data.arrays")
tasks = LazyModule("bench_powerprop.data.tasks")


@dataclass(frozen=True)
class MnistOptions(DatasetOptions):
    IN_MEMORY = True
    PATH_OPTIONS = ("root",)

    root: str = option(None, "directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                       "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (plain or .gz)", check=text(), identity=False)
    val_size: int = option(5000, "images of the official training set held out for validation",
                           check=integer(minimum=1, maximum=59999))
    split_seed: int = option(0, "seed of the train/val split", check=integer(minimum=0, maximum=2**32 - 1))


    def path_problems(self) -> dict[str, str]:
        from pathlib import Path

        from bench_powerprop.data.idx import check_mnist_root

        problem = check_mnist_root(Path(self.root))
        return {"root": problem} if problem else {}


@DATASETS.register("mnist", options=MnistOptions)
def build_mnist(data: dict):
    return tasks.ArrayTask(arrays.load_mnist(data))
