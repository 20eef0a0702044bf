"""Options of the datasets shipped inside a package wheel and split here (digits, mnist5k)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.data.datasets import DatasetOptions
from bench_powerprop.options import OptionError, integer, number, option


@dataclass(frozen=True)
class StratifiedSplitOptions(DatasetOptions):
    IN_MEMORY = True
    #: images in the dataset (the split's sizes follow from it without reading the data)
    IMAGES: ClassVar[int]

    split_seed: int = option(0, "seed of the fixed stratified train/val/test split", check=integer(minimum=0, maximum=2**32 - 1))
    val_fraction: float = option(0.1, "fraction of the images held out for validation",
                                 check=number(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))
    test_fraction: float = option(0.2, "fraction of the images held out for testing",
                                  check=number(minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True))

    def training_examples(self) -> int:
        return self.IMAGES - round(self.val_fraction * self.IMAGES) - round(self.test_fraction * self.IMAGES)

    def check(self, where, cell):
        if self.val_fraction + self.test_fraction > 0.9:
            raise OptionError(f"{where}.test_fraction: val_fraction + test_fraction = "
                              f"{self.val_fraction + self.test_fraction:g} leaves under 10% of the images for training")
