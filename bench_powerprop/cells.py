"""The axes of a training cell, defined once.

A cell is one training run: an experiment plus one value on every axis below. Everything that
names cells is derived from ``AXES``: the ``Cell`` dataclass, the run-directory path
(``method~rigl/variant~erk/alpha~1/sparsity~0.9/seed~0``), the Snakemake wildcard constraint
that matches it, and the cell columns of every tidy table. A new axis is one ``Axis`` line here.

An axis whose default is ``None`` is *optional*: a cell that leaves it unset has no segment for it
in its path and no key for it in its spec, so adding such an axis changes no existing run
directory or spec hash (``level``: the level of an iterative-pruning chain, ``…/seed~0/level~3``).

Numbers are written in paths by ``format_number``: the shortest text that reads back as the same
float (``2.0`` → ``2``, ``0.9`` → ``0.9``), so two different values never share a directory.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench_powerprop.identity import HASH_PATTERN, HASH_PREFIX

EXPERIMENT_PATTERN = r"[A-Za-z0-9_]+"
NAME_PATTERN = r"[a-z0-9_]+"
NUMBER_PATTERN = r"[0-9][0-9.e+-]*"
DEFAULT_VARIANT = "default"
REQUIRED = object()  # an axis without a default value


def format_number(value: float) -> str:
    """Shortest round-trip text of a float, without a trailing ``.0``: 2.0 → '2', 1e-05 → '1e-05'."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class Axis:
    name: str
    type: type
    pattern: str
    doc: str
    default: Any = REQUIRED
    format: Callable[[Any], str] = str

    def text(self, value) -> str:
        return self.format(value)

    @property
    def optional(self) -> bool:
        return self.default is None

    def segment(self) -> str:
        """This axis's part of the wildcard constraint (an optional axis may be absent)."""
        pattern = f"{self.name}~{self.pattern}"
        return f"(?:/{pattern})?" if self.optional else f"/{pattern}"


AXES: tuple[Axis, ...] = (
    Axis("method", str, NAME_PATTERN, "training method (a name registered in bench_powerprop/methods)"),
    Axis("variant", str, NAME_PATTERN, "named set of method options (`variants:` in the config); 'default' = none",
         default=DEFAULT_VARIANT),
    Axis("alpha", float, NUMBER_PATTERN, "Powerprop exponent α; 1 is the plain network", format=format_number),
    Axis("sparsity", float, NUMBER_PATTERN, "target fraction of Linear/Conv weights removed by the method (0: dense)",
         format=format_number),
    Axis("seed", int, r"[0-9]+", "random seed of initialisation, data order and the method's own draws"),
    Axis("level", int, r"[0-9]+", "level of an iterative-pruning chain (lottery tickets: level ℓ starts from level ℓ−1); "
         "unset (no path segment) for every other cell", default=None),
)
AXIS_NAMES = tuple(axis.name for axis in AXES)
#: The columns that identify a cell in every tidy table.
CELL_COLUMNS = ("experiment", *AXIS_NAMES)


def _cell_fields():
    fields = [("experiment", str)]
    for axis in AXES:
        default = {} if axis.default is REQUIRED else {"default": axis.default}
        fields.append((axis.name, axis.type, dataclasses.field(**default)))
    return fields


def _set_axes(self):
    """The axes this cell has a value on (optional axes left unset are skipped)."""
    return [axis for axis in AXES if not (axis.optional and getattr(self, axis.name) is None)]


def _cell_path(self) -> str:
    """The cell's run directory below ``{results}/{experiment}/runs/``."""
    return "/".join(f"{axis.name}~{axis.text(getattr(self, axis.name))}" for axis in _set_axes(self))


def _sort_key(self) -> tuple:
    values = (getattr(self, name) for name in AXIS_NAMES)
    return (self.experiment, *((-1 if value is None else value) for value in values))


def _replace(self, **changes):
    return dataclasses.replace(self, **changes)


def _as_dict(self) -> dict:
    """The cell's values, unset optional axes left out (so they never enter a spec or its hash)."""
    return {"experiment": self.experiment, **{axis.name: getattr(self, axis.name) for axis in _set_axes(self)}}


Cell = dataclasses.make_dataclass(
    "Cell",
    _cell_fields(),
    frozen=True,
    kw_only=True,
    namespace={"path": functools.cached_property(_cell_path), "sort_key": _sort_key, "replace": _replace, "as_dict": _as_dict},
)
Cell.__module__ = __name__
Cell.__doc__ = "One training run: an experiment and a value on every axis of ``AXES``."

#: Snakemake wildcard constraint of ``{cell}``: the axes ``Cell.path`` writes, then the run folder's ``h~<spec hash>``
#: (``bench_powerprop.identity``; ``Plan.cell_path``).
CELL_PATH_PATTERN = "".join(axis.segment() for axis in AXES).removeprefix("/") + f"/{HASH_PREFIX}{HASH_PATTERN}"


AXIS_BY_NAME = {axis.name: axis for axis in AXES}


def coerce_axis(name: str, value):
    """A value of axis ``name`` as its axis type (``alpha``: 2 → 2.0; an optional axis may be None)."""
    axis = AXIS_BY_NAME[name]
    return None if value is None and axis.optional else axis.type(value)


def make_cell(experiment: str, **axes) -> Cell:
    """A ``Cell`` with each axis value coerced to its axis type."""
    return Cell(experiment=experiment, **{name: coerce_axis(name, value) for name, value in axes.items()})
