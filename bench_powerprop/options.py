"""Typed, torch-free option declarations for everything a config can name.

Each registered method, scorer, dataset and model declares its options as a frozen dataclass
next to its registration::

    @dataclass(frozen=True)
    class GMPOptions(Options):
        frequency: int = option(100, "Δt: steps between two pruning steps", check=integer(minimum=1))
        scope: str = option("layerwise", "rank weights per layer or over all layers", check=one_of("layerwise", "global"))

``GMPOptions.parse(raw, where="experiments.x.methods.gmp")`` returns the typed options (defaults
filled in) or raises :class:`OptionError` whose text is one line naming the field, e.g.
``experiments.x.methods.gmp.frequency: must be an integer >= 1, got 0``. Cross-field rules that
need the cell (its sparsity, its number of steps) go in ``Options.check(where, cell)``.

Nothing here imports torch: ``config.validate`` runs inside Snakemake's parse before any job.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench_powerprop.errors import OptionError
from bench_powerprop.structure import UNSTRUCTURED, Structure

Check = Callable[[Any, str], Any]


#: ``option(neutral=...)`` left out: the option has no neutral value and is always part of a cell's identity.
NO_NEUTRAL = object()


def option(default: Any, doc: str, check: Check | None = None, *, neutral: Any = NO_NEUTRAL, identity: bool = True) -> Any:
    """A dataclass field with its documentation and a check run by ``Options.parse``.

    How the option enters a cell's identity (its spec hash; docs/identity.md): ``neutral`` is the
    value that reproduces the behaviour from before the option existed: a cell whose value equals it
    hashes as if the option did not exist, so adding the option changes no existing cell's hash (the
    default may change later; only cells whose value then differs from ``neutral`` change hash).
    ``identity=False``: the option cannot change a result (a logging switch, a file location), so it
    never enters the hash.
    """
    metadata = {"doc": doc, "check": check, "identity": identity}
    if neutral is not NO_NEUTRAL:
        metadata["neutral"] = _plain(neutral)
    return field(default=default, metadata=metadata)


def fail(where: str, message: str, value: Any) -> OptionError:
    return OptionError(f"{where}: {message}, got {value!r}")


def with_schema(check: Check, schema: dict, nullable: bool = False) -> Check:
    """``check`` carrying the JSON schema of the values it accepts (``Options.json_schema`` assembles them, so a
    config's schema is generated from the declarations instead of kept beside them)."""
    check.schema = {"anyOf": [schema, {"type": "null"}]} if nullable else schema
    return check


def _bounds(minimum, maximum, exclusive_minimum=False, exclusive_maximum=False) -> dict:
    bounds = {}
    if minimum is not None:
        bounds["exclusiveMinimum" if exclusive_minimum else "minimum"] = minimum
    if maximum is not None:
        bounds["exclusiveMaximum" if exclusive_maximum else "maximum"] = maximum
    return bounds


# -- checks --------------------------------------------------------------------------------
def _is_bool(value) -> bool:
    return isinstance(value, bool)


def integer(minimum: int | None = None, maximum: int | None = None, nullable: bool = False) -> Check:
    def check(value, where):
        if value is None and nullable:
            return None
        if _is_bool(value) or (not isinstance(value, int) and not (isinstance(value, float) and value.is_integer())):
            raise fail(where, f"must be an integer{_bounds_text(minimum, maximum)}", value)
        value = int(value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise fail(where, f"must be an integer{_bounds_text(minimum, maximum)}", value)
        return value

    return with_schema(check, {"type": "integer", **_bounds(minimum, maximum)}, nullable)


def number(minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False,
           exclusive_maximum: bool = False, nullable: bool = False) -> Check:
    low = None if minimum is None else (">" if exclusive_minimum else ">=") + f" {minimum:g}"
    high = None if maximum is None else ("<" if exclusive_maximum else "<=") + f" {maximum:g}"
    text = "must be a finite number" + "".join(f" {part}" for part in (low, high) if part)

    def check(value, where):
        if value is None and nullable:
            return None
        if _is_bool(value) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail(where, text, value)
        too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
        too_high = maximum is not None and (value >= maximum if exclusive_maximum else value > maximum)
        if too_low or too_high:
            raise fail(where, text, value)
        return float(value)

    return with_schema(check, {"type": "number", **_bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)}, nullable)


def boolean() -> Check:
    def check(value, where):
        if not _is_bool(value):
            raise fail(where, "must be true or false", value)
        return value

    return with_schema(check, {"type": "boolean"})


def one_of(*choices, nullable: bool = False) -> Check:
    def check(value, where):
        if value is None and nullable:
            return None
        if value not in choices:
            raise fail(where, f"must be one of {list(choices)}", value)
        return value

    return with_schema(check, {"enum": list(choices)}, nullable)


def text(pattern: str | None = None, nullable: bool = False) -> Check:
    """A non-empty string, all of it matching ``pattern`` (a pattern without a top-level ``|``: the schema anchors it)."""
    import re

    def check(value, where):
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value or (pattern and not re.fullmatch(pattern, value)):
            raise fail(where, "must be a non-empty string" + (f" matching {pattern}" if pattern else ""), value)
        return value

    return with_schema(check, {"type": "string", "minLength": 1, **({"pattern": f"^{pattern}$"} if pattern else {})},
                       nullable)


def step_or_fraction() -> Check:
    """A step of training: a fraction of the run (a float in [0, 1]) or an absolute step (an int >= 0)."""

    def check(value, where):
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            return value
        if isinstance(value, int) and not _is_bool(value) and value >= 0:
            return value
        raise fail(where, "must be a fraction of training (a float in [0, 1]) or a step (an integer >= 0)", value)

    return with_schema(check, {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "number", "minimum": 0, "maximum": 1}]})


def list_of(item: Check, min_items: int = 0, max_items: int | None = None, unique: bool = False) -> Check:
    size = f"exactly {min_items}" if min_items == max_items else f"at least {min_items}"

    def check(value, where):
        if not isinstance(value, (list, tuple)) or len(value) < min_items or (max_items is not None and len(value) > max_items):
            raise fail(where, f"must be a list of {size} item(s)", value)
        if unique and len({repr(element) for element in value}) != len(value):
            raise fail(where, "must not repeat a value", list(value))
        return tuple(item(element, f"{where}[{i}]") for i, element in enumerate(value))

    schema = {"type": "array", **({"minItems": min_items} if min_items else {}),
              **({"maxItems": max_items} if max_items is not None else {}), **({"uniqueItems": True} if unique else {}),
              "items": getattr(item, "schema", {})}
    return with_schema(check, schema)


def _bounds_text(minimum, maximum) -> str:
    parts = [f">= {minimum}" if minimum is not None else "", f"<= {maximum}" if maximum is not None else ""]
    return "".join(f" {part}" for part in parts if part)


def resolve_step(value: int | float, total_steps: int) -> int:
    """A ``step_or_fraction`` value as a step: ``0.75`` → round(0.75·total); ``750`` → 750."""
    return round(value * total_steps) if isinstance(value, float) else int(value)


# -- the base class ------------------------------------------------------------------------
@dataclass(frozen=True)
class CellFacts:
    """What option checks may know about the cell they configure (no torch, no data)."""

    sparsity: float = 0.0
    steps: int = 1
    alpha: float = 1.0
    #: tasks in the cell's data (a task sequence such as ``permuted``; 1 for an ordinary dataset)
    tasks: int = 1
    #: the experiment's mask structure (``bench_powerprop.structure``)
    structure: Structure = UNSTRUCTURED


@dataclass(frozen=True)
class Options:
    """Base of every options dataclass: parse from a config mapping, check, describe."""

    #: Which top-level key of a config section names the entry (e.g. a dataset's ``name``);
    #: such keys are not options and are skipped by ``parse``.
    RESERVED: ClassVar[tuple[str, ...]] = ()
    #: Options a config must give (their declared default, None, only says "no default").
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def parse(cls, raw: Mapping | None, where: str, cell: CellFacts | None = None):
        options = cls.parse_fields(raw, where)
        options.check(where, cell or CellFacts())
        return options

    @classmethod
    def parse_fields(cls, raw: Mapping | None, where: str):
        """Every option checked on its own (names, types, ranges), without the cross-field rules about a cell."""
        raw = dict(raw or {})
        if not isinstance(raw, dict):
            raise fail(where, "must be a mapping of option names to values", raw)
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(raw) - set(names) - set(cls.RESERVED))
        if unknown:
            raise OptionError(f"{where}.{unknown[0]}: unknown option (known: {', '.join(names) or 'none'})")
        values = {}
        for f in dataclasses.fields(cls):
            value = raw.get(f.name, f.default)
            check = f.metadata.get("check")
            unset = value is None and f.default is None  # an optional option left at "decide for me"
            if unset and f.name in cls.REQUIRED:
                raise OptionError(f"{where}.{f.name}: required")
            values[f.name] = check(value, f"{where}.{f.name}") if check and not unset else value
        return cls(**values)

    def check(self, where: str, cell: CellFacts) -> None:
        """Cross-field rules; raise ``OptionError`` naming the field. Overridden where needed."""

    def as_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def shared_dict(self) -> dict:
        """``as_dict()``, made once per options object: the specs of the cells that share these options share it
        (nobody edits it; the plan's spec hashes memoise a section's identity by its object)."""
        cached = self.__dict__.get("_shared_dict")
        if cached is None:
            cached = self.__dict__["_shared_dict"] = self.as_dict()
        return cached

    @classmethod
    def identity_of(cls, values: dict) -> dict:
        """``values`` (an ``as_dict`` of these options, e.g. a spec section) as they enter a cell's identity:
        options declared ``identity=False`` left out, and options at their declared ``neutral`` value.
        Keys these options do not declare are kept (they are someone else's, e.g. a dataset's ``name``)."""
        hashed = {}
        for name, value in values.items():
            metadata = cls._field_metadata().get(name)
            if metadata is not None and (not metadata["identity"] or metadata.get("neutral", NO_NEUTRAL) == value):
                continue
            hashed[name] = value
        return hashed

    @classmethod
    def _field_metadata(cls) -> dict:
        cached = cls.__dict__.get("_metadata_cache")
        if cached is None:
            cached = {f.name: {"identity": f.metadata.get("identity", True), **f.metadata} for f in dataclasses.fields(cls)}
            cls._metadata_cache = cached
        return cached

    @classmethod
    def json_schema(cls) -> dict:
        """The JSON schema of a config section of these options (closed: an unknown key is an error), generated from
        each option's check, documentation and default (``bench_powerprop.config.schema``)."""
        properties = {}
        for f in dataclasses.fields(cls):
            schema = dict(getattr(f.metadata.get("check"), "schema", {}))
            schema["description"] = f.metadata.get("doc", "")
            if f.default is not None and f.name not in cls.REQUIRED:
                schema["default"] = _plain(f.default)
            properties[f.name] = schema
        return {"type": "object", **({"required": list(cls.REQUIRED)} if cls.REQUIRED else {}),
                "additionalProperties": False, "properties": properties}

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """``(name, default, doc)`` of every option, for ``--help`` texts and the README."""
        return [(f.name, f.default, f.metadata.get("doc", "")) for f in dataclasses.fields(cls)]


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class NoOptions(Options):
    """For entries that take no options."""
