"""One cell's training spec, typed: built once by the plan from typed options, serialised to the job by
``CellSpec.as_dict`` (JSON on its command line), deserialised there by ``CellSpec.from_dict`` — the one parse
a job makes; nothing after it reads a raw dict.

The serialised form is exactly the spec the spec hash is taken of (``bench_powerprop.identity``; docs/identity.md):
the cell's axes, the data and model sections with every option filled in, ``train`` and ``method_options`` with
every default filled in, the structure (where not unstructured), the snapshot steps and the lineage (where any).
Torch-free: the plan builds these inside Snakemake's parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from bench_powerprop.cells import AXIS_NAMES, Cell, make_cell
from bench_powerprop.options import CellFacts, Options
from bench_powerprop.structure import UNSTRUCTURED, Structure
from bench_powerprop.training.options import TrainOptions

#: keys a spec must have (the workflow writes specs; ``train --help`` shows one)
SPEC_KEYS = ("experiment", "method", "alpha", "sparsity", "seed", "data", "model", "train")
CELL_FIELDS = ("experiment", *AXIS_NAMES)
OPTIONAL_KEYS = ("variant", "level", "structure", "method_options", "snapshot_steps", "lineage")


class SpecError(ValueError):
    """A training spec that cannot be trained; ``str(error)`` is one line naming the field."""


def cell_facts(cell: Cell, steps: int, tasks: int, structure: Structure) -> CellFacts:
    """What option checks may know about a cell (the one construction: planning and the job both call it)."""
    return CellFacts(sparsity=cell.sparsity, steps=steps, alpha=cell.alpha, tasks=tasks, structure=structure)


@dataclass(frozen=True, eq=False)
class CellSpec:
    cell: Cell
    #: the dataset's and the model's sections, every option filled in (plus the workflow's ``.beton`` paths)
    data: dict
    model: dict
    train: TrainOptions
    method_options: Options
    tasks: int = 1
    structure: Structure = UNSTRUCTURED
    snapshot_steps: tuple[int, ...] = ()
    #: ``{init_from|mask_from: {path, step, parent_spec_hash}}``
    lineage: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        """The cell's axes read through to its ``Cell``: ``spec.seed``, ``spec.alpha``, ``spec.method``, ..."""
        if name in CELL_FIELDS:
            return getattr(self.cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @cached_property
    def facts(self) -> CellFacts:
        return cell_facts(self.cell, self.train.steps, self.tasks, self.structure)

    @cached_property
    def hash(self) -> str:
        from bench_powerprop.identity import cell_hash

        return cell_hash(self.as_dict())

    def as_dict(self) -> dict:
        """The serialised spec (what a job is given, what run.json and model.pt record, what is hashed). Sections
        shared by the cells of an experiment are the same objects in each cell's dict: nobody edits them."""
        spec = {**self.cell.as_dict(), "data": self.data, "model": self.model, "train": self.train.shared_dict()}
        if not self.structure.unstructured:  # only where declared: every unstructured spec (and hash) stays as it was
            spec["structure"] = self.structure.as_config()
        spec["method_options"] = self.method_options.shared_dict()
        if self.snapshot_steps:
            spec["snapshot_steps"] = sorted(self.snapshot_steps)
        if self.lineage:
            spec["lineage"] = self.lineage
        return spec

    @classmethod
    def of(cls, spec: CellSpec | dict) -> CellSpec:
        return spec if isinstance(spec, CellSpec) else cls.from_dict(spec)

    @classmethod
    def from_dict(cls, spec: dict, where: str = "spec") -> CellSpec:
        """The typed spec of a serialised one, every section checked (``SpecError``/``OptionError``: one line naming
        the field); the one parse of a spec a training job makes."""
        from bench_powerprop.data.datasets import resolve_data_config, task_count
        from bench_powerprop.methods import METHODS
        from bench_powerprop.models import resolve_model_config
        from bench_powerprop.structure import parse_structure

        if not isinstance(spec, dict):
            raise SpecError(f"{where}: must be a mapping (JSON object), got {type(spec).__name__}")
        train_raw = spec.get("train") if isinstance(spec.get("train"), dict) else {}
        missing = [key for key in SPEC_KEYS if key not in spec] + [f"train.{key}" for key in TrainOptions.REQUIRED
                                                                   if key not in train_raw]
        if missing:
            raise SpecError(f"{where}: missing {', '.join(missing)} (the workflow writes specs; see `train --help` for an example)")
        unknown = sorted(set(spec) - set(SPEC_KEYS) - set(OPTIONAL_KEYS))
        if unknown:
            raise SpecError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(SPEC_KEYS + OPTIONAL_KEYS)})")
        if spec["method"] not in METHODS:
            raise SpecError(f"{where}.method: unknown method {spec['method']!r} (registered: {', '.join(METHODS.names())})")
        try:
            cell = make_cell(spec["experiment"], **{name: spec[name] for name in AXIS_NAMES if name in spec})
        except (TypeError, ValueError) as error:
            raise SpecError(f"{where}: a cell axis is malformed ({error})") from None
        train = TrainOptions.parse(spec["train"], f"{where}.train")
        resolve_data_config(spec["data"], f"{where}.data")
        resolve_model_config(spec["model"], f"{where}.model")
        structure = parse_structure(spec.get("structure"), f"{where}.structure")
        tasks = task_count(spec["data"])
        facts = cell_facts(cell, train.steps, tasks, structure)
        options = METHODS.options(spec["method"]).parse(spec.get("method_options"), f"{where}.method_options", facts)
        return cls(cell, spec["data"], spec["model"], train, options, tasks, structure,
                   tuple(spec.get("snapshot_steps", ())), dict(spec.get("lineage") or {}))
