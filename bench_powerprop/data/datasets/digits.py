"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), in memory.

Read from the CSV inside scikit-learn's wheel (``bench_powerprop.data.arrays.load_digits``) with a
fixed seeded stratified train/val/test split.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS, DatasetOptions
from bench_powerprop.options import OptionError, integer, number, option

DIGITS_IMAGES = 1797


@dataclass(frozen=True)
class DigitsOptions(DatasetOptions):
    IN_MEMORY = True

    split_seed: int = option(0, "seed of the fixed stratified train/val/test split", check=integer(minimum=0, maximum=2**32 - 1))
    val_fraction: float = option(0.1, "fraction of the images held out for validation",
                                 check=number(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))
    test_fraction: float = option(0.2, "fraction of the images held out for testing",
                                  check=number(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))

    def training_examples(self) -> int:
        held_out = round(self.val_fraction * DIGITS_IMAGES) + round(self.test_fraction * DIGITS_IMAGES)
        return DIGITS_IMAGES - held_out

    def check(self, where, cell):
        if self.val_fraction + self.test_fraction > 0.9:
            raise OptionError(f"{where}.test_fraction: val_fraction + test_fraction = "
                              f"{self.val_fraction + self.test_fraction:g} leaves under 10% of the images for training")


@DATASETS.register("digits", options=DigitsOptions)
def build_digits(data: dict):
    from bench_powerprop.data.tasks import ArrayTask

    return ArrayTask(data)
