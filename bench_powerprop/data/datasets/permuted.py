"""``permuted``: a task sequence, each task a fixed pixel permutation of an in-memory dataset.

Permuted MNIST (Goodfellow et al. 2013; the continual-learning benchmark of Kirkpatrick et al.
2017 and of Schwarz et al. 2021 §5) over any in-memory dataset (``digits``, ``mnist``, ...): every
task has the base dataset's images, labels and train/val/test split, with the input features
reordered by that task's permutation. **Task 1 is the identity** (the base dataset itself) unless
``identity_first: false``; the other permutations are drawn in task order from
``numpy.random.default_rng(permutation_seed)``, so a longer sequence extends a shorter one with
the same seed. The built task exposes ``.tasks`` (one per phase task index, see
``training.trainer.build_cell``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.data.datasets import DATASETS, DatasetOptions
from bench_powerprop.lazy import LazyModule
from bench_powerprop.options import boolean, fail, integer, option

permuted = LazyModule("bench_powerprop.data.permuted")


def in_memory_dataset():
    """A dataset name (its defaults) or a ``{name: ..., option: value}`` mapping, resolved; in-memory datasets only."""

    def check(value, where):
        section = {"name": value} if isinstance(value, str) else value
        if not isinstance(section, dict):
            raise fail(where, "must be a dataset name or a mapping with a name", value)
        name = section.get("name")
        if name in DATASETS and not DATASETS.options(name).IN_MEMORY:
            in_memory = [entry for entry in DATASETS.names() if DATASETS.options(entry).IN_MEMORY]
            raise fail(f"{where}.name", f"must be an in-memory dataset ({', '.join(in_memory)})", name)
        return DATASETS.resolve(section, where)

    return check


@dataclass(frozen=True)
class PermutedOptions(DatasetOptions):
    base: str | dict = option("digits", "the in-memory dataset whose features are permuted: a name (with its "
                              "defaults) or a mapping {name: mnist, root: ...}", check=in_memory_dataset())
    tasks: int = option(10, "T, the number of tasks in the sequence", check=integer(minimum=1, maximum=10_000))
    permutation_seed: int = option(0, "seed of the permutations", check=integer(minimum=0, maximum=2**32 - 1))
    identity_first: bool = option(True, "task 1 is the unpermuted base dataset", check=boolean())


@DATASETS.register("permuted", options=PermutedOptions)
def build_permuted(data: dict):
    return permuted.PermutedSequence(data)
