"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), in memory.

Read from the CSV inside scikit-learn's wheel (``bench_powerprop.data.arrays.load_bundled_csv``) with a
fixed seeded stratified train/val/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS
from bench_powerprop.data.datasets._split import StratifiedSplitOptions
from bench_powerprop.lazy import LazyModule

arrays = LazyModule("bench_powerprop.data.arrays")
tasks = LazyModule("bench_powerprop.data.tasks")


@dataclass(frozen=True)
class DigitsOptions(StratifiedSplitOptions):
    IMAGES = 1797


@DATASETS.register("digits", options=DigitsOptions)
def build_digits(data: dict):
    return tasks.ArrayTask(arrays.load_bundled_csv("sklearn", "datasets/data/digits.csv.gz", 16.0, data))
