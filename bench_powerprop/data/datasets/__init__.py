"""Dataset registry: one file per dataset declares its options and builds its task (torch-free at import).

``resolve_data_config(data)`` checks a config's ``data:`` section against the dataset's options
(closed: an unknown key is an error naming it) and fills in the defaults; the result is what a
training spec records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bench_powerprop.options import Options
from bench_powerprop.registry import Registry

DATASETS = Registry("dataset", "bench_powerprop.data.datasets")


@dataclass(frozen=True)
class DatasetOptions(Options):
    """Base of dataset options; ``name`` selects the dataset and is not an option."""

    RESERVED: ClassVar[tuple[str, ...]] = ("name",)
    #: whether the built task holds its splits in memory as tensors (``data.tasks.ArrayTask``), so a
    #: dataset built over another one (``permuted``) can take it as its ``base``
    IN_MEMORY: ClassVar[bool] = False

    @classmethod
    def beton_stems(cls) -> list[str]:
        """The .beton files the workflow writes for this dataset (``_ffcv.FfcvLoaderOptions``); none for the others."""
        return []

    #: options naming local files or folders the dataset reads: each must exist before any job runs
    PATH_OPTIONS: ClassVar[tuple[str, ...]] = ()

    def path_problems(self) -> dict[str, str]:
        """{option: problem} of what the dataset finds wrong in its existing input paths beyond their existence
        (checked before any job runs, so cheap: file names and sizes, not contents)."""
        return {}

    def training_examples(self) -> int | None:
        """Size of the training split when known without reading the data (None: unknown until loaded)."""
        return None


def resolve_data_config(data_cfg: dict, where: str = "data") -> dict:
    """``data_cfg`` with every option of its dataset filled in (checked; one-line errors)."""
    return DATASETS.resolve(data_cfg, where)


def task_count(data_cfg: dict) -> int:
    """Tasks a resolved data config yields: its ``tasks`` option for a task sequence (``permuted``), else 1."""
    return int(data_cfg.get("tasks", 1))
