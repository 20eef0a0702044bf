"""An experiment's ``prune`` section (the one-shot sweep after training), typed: each setting's default, check and
documentation declared once; the JSON schema's ``prune`` section is generated from it. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass

from bench_powerprop.options import CellFacts, OptionError, Options, fail, number, one_of, option, text, with_schema

GEOMSPACE = "geomspace"
FRACTION_KEPT = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
KEEP_LEVELS_SCHEMA = {"anyOf": [
    {"type": "array", "minItems": 1, "uniqueItems": True, "items": FRACTION_KEPT},
    {"type": "object", "required": [GEOMSPACE], "additionalProperties": False,
     "properties": {GEOMSPACE: {"type": "array", "minItems": 3, "maxItems": 3,
                                "prefixItems": [FRACTION_KEPT, FRACTION_KEPT, {"type": "integer", "minimum": 1, "maximum": 1000}]}}},
]}


def keep_levels(levels) -> list[float]:
    """Fractions of weights kept: an explicit list, or ``{"geomspace": [start, stop, num]}`` (numpy's geomspace)."""
    if isinstance(levels, dict):
        import numpy as np

        start, stop, num = levels[GEOMSPACE]
        return [float(value) for value in np.geomspace(start, stop, int(num))]
    return [float(level) for level in levels]


def _keep_levels_check():
    def check(value, where):
        if isinstance(value, dict) and set(value) == {GEOMSPACE} and isinstance(value[GEOMSPACE], (list, tuple)):
            start, stop, num = (list(value[GEOMSPACE]) + [None] * 3)[:3]
            number(minimum=0, exclusive_minimum=True, maximum=1)(start, f"{where}.{GEOMSPACE}[0]")
            number(minimum=0, exclusive_minimum=True, maximum=1)(stop, f"{where}.{GEOMSPACE}[1]")
            if len(value[GEOMSPACE]) != 3 or isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= 1000:
                raise fail(f"{where}.{GEOMSPACE}", "must be [start, stop, num] with num an integer in [1, 1000]", value[GEOMSPACE])
            return {GEOMSPACE: list(value[GEOMSPACE])}
        if not isinstance(value, (list, tuple)) or not value:
            raise fail(where, "must be a non-empty list of fractions in (0, 1] or {geomspace: [start, stop, num]}", value)
        return tuple(number(minimum=0, exclusive_minimum=True, maximum=1)(level, f"{where}[{i}]") for i, level in enumerate(value))

    return with_schema(check, KEEP_LEVELS_SCHEMA)


def _structures_check():
    def check(value, where):
        from bench_powerprop.structure import parse_structure

        if not isinstance(value, (list, tuple)) or not value:
            raise fail(where, "must be a non-empty list of structures", value)
        for i, item in enumerate(value):
            parse_structure(item, f"{where}[{i}]")
        return tuple(value)

    return with_schema(check, {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/structure"}})


@dataclass(frozen=True)
class PruneOptions(Options):
    REQUIRED = ("keep_levels",)

    keep_levels: tuple[float, ...] | dict = option(
        None, "fractions of weights kept: a list of numbers in (0, 1], or {geomspace: [start, stop, num]}",
        check=_keep_levels_check())
    scope: str = option("layerwise", "rank the weights per layer, over the hidden layers together (global), or "
                        "globally with the output layer ranked on its own", check=one_of("layerwise", "global", "global_separate_output"))
    scorer: str = option("magnitude", "registered scorer ranking the weights", check=text("[a-z0-9_]+"))
    last_layer_keep_factor: float = option(2.0, "the output layer keeps min(1, factor × the kept fraction)",
                                           check=number(minimum=1))
    structures: tuple = option(("unstructured",), "mask structures the sweep prunes to, one set of rows each",
                               check=_structures_check())

    @property
    def levels(self) -> list[float]:
        return keep_levels(self.keep_levels)

    @property
    def parsed_structures(self) -> list:
        from bench_powerprop.structure import parse_structure

        return [parse_structure(value) for value in self.structures]

    def check(self, where: str, cell: CellFacts) -> None:
        from bench_powerprop.scoring import SCORERS

        if self.scorer not in SCORERS:
            raise OptionError(f"{where}.scorer: unknown scorer {self.scorer!r} (registered: {', '.join(SCORERS.names())})")
        if SCORERS.get(self.scorer).needs_data:
            raise OptionError(f"{where}.scorer: {self.scorer!r} needs data; one-shot pruning after training ranks by a "
                              "data-free scorer")
        if self.scope == "global" and self.last_layer_keep_factor != 1:
            raise OptionError(f"{where}.last_layer_keep_factor: scope 'global' ranks the output layer with every other layer; "
                              f"set it to 1 (default 2), or use scope 'global_separate_output'")
        structures = self.parsed_structures
        if any(not structure.unstructured for structure in structures) and self.scope != "layerwise":
            raise OptionError(f"{where}.scope: structured sweeps prune layerwise only, got {self.scope!r}")
        if len({structure.label() for structure in structures}) != len(structures):
            raise OptionError(f"{where}.structures: a structure is listed twice")
        if len(set(self.levels)) != len(self.levels):
            raise OptionError(f"{where}.keep_levels: the levels {self.levels} repeat a value")


def prune_options(raw: dict, where: str = "prune") -> PruneOptions:
    """A ``prune`` section (a config's, or the one a job is given) with every default filled in."""
    return PruneOptions.parse(raw, where)
