"""Options shared by the datasets read through FFCV .beton files (cifar10, imagenet)."""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DatasetOptions
from bench_powerprop.options import boolean, integer, option


@dataclass(frozen=True)
class FfcvLoaderOptions(DatasetOptions):
    eval_batch_size: int = option(256, "batch size of evaluation", check=integer(minimum=1))
    num_workers: int | None = option(None, "FFCV loader threads per process (default: cores / processes)",
                                     check=integer(minimum=1, nullable=True), identity=False)
    os_cache: bool | None = option(None, "read the .beton through the OS page cache (default: when it fits in "
                                   "half the RAM)", check=boolean(), identity=False)
