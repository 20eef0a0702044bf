"""Base of the datasets read through FFCV ``.beton`` files (cifar10, imagenet): what the workflow writes, and how.

A dataset module declares, next to its options, the ``.beton`` files of its splits
(``BETON_OF_SPLIT``), the pipeline style and the writer of one file (``write_beton``) with the
files it reads (``beton_sources``, the inputs of the workflow's ``write_beton`` rule, so replacing
them rewrites the file). The workflow writes ``datasets/<experiment>/<dataset>/<stem>.beton`` for
each stem and passes its path as the data option ``<stem>_beton`` (declared by the dataset,
``identity=False``); ``data.vision.FfcvVisionTask`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.data.datasets import DatasetOptions
from bench_powerprop.options import boolean, integer, option


@dataclass(frozen=True)
class FfcvLoaderOptions(DatasetOptions):
    #: the task's splits (train, val, test), each with the stem of the .beton it reads (val and test may share one)
    BETON_OF_SPLIT: ClassVar[dict[str, str]]
    #: ``ffcv_io`` pipeline style: "cifar" (stored resolution; flip + translate) or "imagenet" (RandomResizedCrop)
    STYLE: ClassVar[str]
    #: the train resolution when the options set no ``image_size``
    IMAGE_SIZE: ClassVar[int]
    #: the options ``write_beton`` and ``beton_sources`` read (the workflow rewrites the files when one changes)
    WRITER_OPTIONS: ClassVar[tuple[str, ...]]

    eval_batch_size: int = option(256, "batch size of evaluation", check=integer(minimum=1))
    num_workers: int | None = option(None, "FFCV loader threads per process (default: cores / processes)",
                                     check=integer(minimum=1, nullable=True), identity=False)
    os_cache: bool | None = option(None, "read the .beton through the OS page cache (default: when it fits in "
                                   "half the RAM)", check=boolean(), identity=False)

    @classmethod
    def beton_stems(cls) -> list[str]:
        return sorted(set(cls.BETON_OF_SPLIT.values()))

    def beton_sources(self, stem: str) -> list[str]:
        """The files or folders the writer of ``stem`` reads."""
        raise NotImplementedError

    def write_beton(self, stem: str, out: str, num_workers: int | None = None):
        """Write the .beton ``stem`` to ``out`` (atomically: ``ffcv_io.write_beton``)."""
        raise NotImplementedError
