"""The grid of an experiment: its cells, each block's declarations, and lineage resolved to parent cells."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property

from bench_powerprop.cell_spec import cell_facts
from bench_powerprop.cells import DEFAULT_VARIANT, Cell, coerce_axis, make_cell
from bench_powerprop.config.loading import ConfigError
from bench_powerprop.options import CellFacts, OptionError, Options, integer, list_of, number, option, text, with_schema

FINAL = "final"
PREVIOUS = "previous"
NAME = "[a-z0-9_]+"
MAX_SEED = 2**32 - 1


def _axis(item) -> object:
    """The values of one grid axis: a non-empty list without repeats."""
    return list_of(item, min_items=1, unique=True)


def _lineage():
    """``init_from`` / ``mask_from``: its shape is the schema's ``lineage`` (resolved by ``ExperimentGrid.parent``)."""

    def check(value, where):
        if not isinstance(value, dict):
            raise OptionError(f"{where}: must be a mapping with cell and step, got {value!r}")
        return value

    return with_schema(check, {"$ref": "#/$defs/lineage"})


@dataclass(frozen=True)
class GridBlock(Options):
    """One block of an experiment's ``grid``: the cartesian product of its axes' values, and what its cells declare.
    The config schema's ``grid_block`` is generated from it."""

    REQUIRED = ("method", "alpha", "sparsity", "seed")

    method: tuple[str, ...] = option(None, "training methods (registered names)", check=_axis(text(NAME)))
    variant: tuple[str, ...] = option((DEFAULT_VARIANT,), "variants of the methods (default: [default], the method's "
                                      "options without a variant)", check=_axis(text(NAME)))
    alpha: tuple[float, ...] = option(None, "Powerprop exponents α", check=_axis(number(minimum=0, exclusive_minimum=True)))
    sparsity: tuple[float, ...] = option(None, "target sparsities", check=_axis(number(minimum=0, maximum=1, exclusive_maximum=True)))
    seed: tuple[int, ...] = option(None, "seeds", check=_axis(integer(minimum=0, maximum=MAX_SEED)))
    level: tuple[int, ...] | None = option(None, "levels of an iterative-pruning chain (lottery tickets); absent for every "
                                           "other cell", check=_axis(integer(minimum=0, maximum=1000)))
    snapshot_steps: tuple[int, ...] = option((), "steps at which these cells save weights + masks (Snakemake outputs "
                                             "another cell can start from)", check=list_of(integer(minimum=0), unique=True))
    init_from: dict | None = option(None, "start from another cell's weights at a step", check=_lineage())
    mask_from: dict | None = option(None, "train under another cell's mask from a step", check=_lineage())

    def cells(self, experiment: str) -> list[Cell]:
        return [make_cell(experiment, method=method, variant=variant, alpha=alpha, sparsity=sparsity, seed=seed, level=level)
                for method, variant, alpha, sparsity, seed, level in itertools.product(
                    self.method, self.variant, self.alpha, self.sparsity, self.seed, self.level or (None,))]


def check_structure(method_class, cell, structure, where: str) -> None:
    """A method runs only under the structures it declares; N:M cannot go below n/m of the weights."""
    if structure.kind not in method_class.structures:
        raise ConfigError(f"{where}: method {cell.method!r} supports structure {' or '.join(method_class.structures)} only, "
                          f"not {structure.label()}")
    if method_class.sparse and 1 - cell.sparsity < structure.lowest_density():
        raise ConfigError(f"{where}: {structure.label()} keeps at least {structure.lowest_density():g} of each layer, "
                          f"so sparsity {cell.sparsity:g} of {cell.path} cannot be reached")



# -- the grid ----------------------------------------------------------------------------------
@dataclass
class BlockCells:
    """The cells of one grid block and what the block declares for them."""

    index: int
    cells: list[Cell]
    snapshot_steps: tuple[int, ...] = ()
    init_from: dict | None = None
    mask_from: dict | None = None
    where: str = ""


@dataclass
class ExperimentGrid:
    """Every cell of one experiment, with its block's declarations; lineage resolved to parent cells."""

    name: str
    experiment: dict
    blocks: list[BlockCells] = field(default_factory=list)
    block_of: dict = field(default_factory=dict)
    #: tasks in the experiment's data, and each cell's parsed method options (filled in on first use)
    _tasks: int | None = None
    _options: dict = field(default_factory=dict)

    def __post_init__(self):
        for index, raw in enumerate(self.experiment["grid"]):
            where = f"experiments.{self.name}.grid[{index}]"
            try:
                block = GridBlock.parse(raw, where)
            except OptionError as error:
                raise ConfigError(str(error)) from None
            cells = block.cells(self.name)
            declared = BlockCells(index, cells, block.snapshot_steps, block.init_from, block.mask_from, where)
            self.blocks.append(declared)
            for cell in cells:
                if cell in self.block_of:
                    raise ConfigError(f"{where}: cell {cell.path} is already in grid[{self.block_of[cell].index}]")
                self.block_of[cell] = declared
        paths = {}
        for cell in self.block_of:
            if paths.setdefault(cell.path, cell) != cell:
                raise ConfigError(f"experiments.{self.name}.grid: two cells share the run directory {cell.path}")

    @property
    def cells(self) -> list[Cell]:
        return sorted(self.block_of, key=Cell.sort_key)

    def method_options_raw(self, method: str, variant: str) -> dict:
        base = dict(self.experiment.get("methods", {}).get(method, {}))
        if variant != DEFAULT_VARIANT:
            base.update(self.experiment.get("variants", {}).get(method, {}).get(variant, {}))
        return base

    @property
    def tasks(self) -> int:
        """Tasks in the experiment's data (a task sequence such as ``permuted``; 1 for an ordinary dataset)."""
        from bench_powerprop.data.datasets import resolve_data_config, task_count

        if self._tasks is None:
            self._tasks = task_count(resolve_data_config(self.experiment["data"]))
        return self._tasks

    @cached_property
    def train(self):
        """The experiment's typed ``train`` section, every default filled in (parsed once: validation and plan read it)."""
        from bench_powerprop.training.options import TrainOptions

        return TrainOptions.parse(self.experiment["train"], f"experiments.{self.name}.train")

    def cell_facts(self, cell: Cell) -> CellFacts:
        """What option checks may know about a cell (validation, lineage checks, plan; ``cell_spec.cell_facts``)."""
        return cell_facts(cell, self.train.steps, self.tasks, self.structure)

    @cached_property
    def structure(self):
        from bench_powerprop.structure import parse_structure

        return parse_structure(self.experiment.get("structure"), f"experiments.{self.name}.structure")

    def method_options(self, cell: Cell):
        """The cell's typed method options (the experiment's, its variant's over them, defaults filled in), parsed once."""
        from bench_powerprop.methods import METHODS

        key = self._options_key(cell)
        if key not in self._options:
            self._options[key] = METHODS.options(cell.method).parse(self.method_options_raw(cell.method, cell.variant),
                                                                    self.options_where(cell.method, cell.variant),
                                                                    self.cell_facts(cell))
        return self._options[key]

    @staticmethod
    def _options_key(cell: Cell) -> tuple:
        return cell.method, cell.variant, cell.sparsity, cell.alpha

    def options_where(self, method: str, variant: str) -> str:
        if variant == DEFAULT_VARIANT:
            return f"experiments.{self.name}.methods.{method}"
        return f"experiments.{self.name}.variants.{method}.{variant}"

    def check_options(self) -> None:
        from bench_powerprop.methods import METHODS

        for block in self.blocks:
            for cell in block.cells:
                if cell.method not in METHODS:
                    raise ConfigError(f"{block.where}.method: unknown method {cell.method!r} (registered: {', '.join(METHODS.names())})")
                variants = self.experiment.get("variants", {}).get(cell.method, {})
                if cell.variant != DEFAULT_VARIANT and cell.variant not in variants:
                    raise ConfigError(f"{block.where}.variant: method {cell.method!r} has no variant {cell.variant!r} "
                                      f"(defined under experiments.{self.name}.variants.{cell.method}: {sorted(variants) or 'none'})")
                check_structure(METHODS.get(cell.method), cell, self.structure, f"experiments.{self.name}.structure")
                if not METHODS.get(cell.method).sparse and cell.sparsity != 0:
                    raise ConfigError(f"{block.where}.sparsity: method {cell.method!r} trains without a sparsity target, "
                                      f"so its grid sparsity must be 0, got {cell.sparsity:g}")
                self.method_options(cell)
        for method in self.experiment.get("methods", {}):
            if method not in METHODS:
                raise ConfigError(f"experiments.{self.name}.methods.{method}: unknown method (registered: {', '.join(METHODS.names())})")
        for method, variants in self.experiment.get("variants", {}).items():
            if method not in METHODS:
                raise ConfigError(f"experiments.{self.name}.variants.{method}: unknown method (registered: {', '.join(METHODS.names())})")
            for variant in variants:  # a variant no cell uses yet: each option checked on its own
                if variant != DEFAULT_VARIANT and (method, variant) not in {key[:2] for key in self._options}:
                    METHODS.options(method).parse_fields(self.method_options_raw(method, variant), self.options_where(method, variant))

    def parent(self, cell: Cell, relation: str) -> tuple[Cell, int | str] | None:
        """The cell and step ``cell`` inherits from through ``relation`` (init_from / mask_from), or None.

        ``level: previous`` names the cell's own level minus one (the previous level of a pruning chain).
        """
        declared = getattr(self.block_of[cell], relation)
        if declared is None:
            return None
        changes = {key: self._parent_axis(cell, key, value, relation) for key, value in declared["cell"].items()}
        return cell.replace(**changes), declared["step"]

    def _parent_axis(self, cell: Cell, key: str, value, relation: str):
        if key == "level" and value == PREVIOUS:
            if cell.level is None or cell.level < 1:
                raise ConfigError(f"{self.block_of[cell].where}.{relation}.cell.level: 'previous' needs cells with a level >= 1, "
                                  f"got {cell.path}")
            return cell.level - 1
        return coerce_axis(key, value)

    def check_lineage(self) -> None:
        from bench_powerprop.methods import METHODS

        for cell, block in self.block_of.items():
            for relation in ("init_from", "mask_from"):
                found = self.parent(cell, relation)
                if found is None:
                    continue
                parent, step = found
                where = f"{block.where}.{relation}"
                if parent not in self.block_of:
                    raise ConfigError(f"{where}: cell {cell.path} would inherit from {parent.path}, which is not in the grid")
                if parent == cell:
                    raise ConfigError(f"{where}: a cell cannot inherit from itself")
                if step != FINAL and step not in self.block_of[parent].snapshot_steps:
                    raise ConfigError(f"{where}.step: {step} is not in the snapshot_steps of {parent.path} "
                                      f"({list(self.block_of[parent].snapshot_steps)}); add it there or use final")
                if relation == "mask_from" and not METHODS.get(cell.method).accepts_mask_from:
                    raise ConfigError(f"{where}: method {cell.method!r} does not use an inherited mask")
            self._check_method_lineage(cell, block)
        for cell in self.block_of:
            self._check_acyclic(cell)

    def _check_method_lineage(self, cell: Cell, block: BlockCells) -> None:
        """The method's own rules about what it inherits (``Method.check_lineage``), as one-line config errors."""
        from bench_powerprop.methods import METHODS

        options = self.method_options(cell)
        declared = {relation: found[1] for relation in ("init_from", "mask_from") if (found := self.parent(cell, relation))}
        try:
            METHODS.get(cell.method).check_lineage(options, declared, cell)
        except OptionError as error:
            raise ConfigError(f"{block.where}: {error}") from None

    def _check_acyclic(self, cell: Cell, descendants: tuple = ()) -> None:
        if cell in descendants:
            raise ConfigError(f"{self.block_of[descendants[0]].where}: the lineage of {descendants[0].path} loops back to {cell.path}")
        for found in (self.parent(cell, "init_from"), self.parent(cell, "mask_from")):
            if found and found[0] in self.block_of:
                self._check_acyclic(found[0], (*descendants, cell))


def grid_cells(config: dict) -> list[Cell]:
    """Every training cell of the active experiments, sorted."""
    cells = []
    for name in config["active_experiments"]:
        cells += ExperimentGrid(name, config["experiments"][name]).cells
    return cells
