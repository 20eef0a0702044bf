"""Registries of everything a user extends: methods, scorers, datasets, models (timm's way).

An entry is one file in its package that decorates a class (or builder function) with
``REGISTRY.register("name", options=SomeOptions)``. Every module of the package is imported on
first use, so a new file is found without editing any list, and the tests that are parametrised
over ``REGISTRY.names()`` test the new entry without new test code.

Registration modules are imported by config validation (inside Snakemake's parse), so they must
not import torch at module level: they use ``bench_powerprop.lazy`` for torch and for the
torch-using helpers of this package.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from bench_powerprop.options import NoOptions, OptionError, Options


class Registry:
    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._entries: dict[str, Any] = {}
        self._discovered = False

    def register(self, name: str, options: type[Options] = NoOptions):
        """Decorator: record ``entry`` under ``name`` with its options class (``entry.Options``)."""

        def decorator(entry):
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            entry.registry_name = name
            entry.Options = options
            self._entries[name] = entry
            return entry

        return decorator

    def discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        module = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{self.package}.{info.name}")

    def get(self, name: str):
        self.discover()
        if name not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r} (registered: {', '.join(self.names())})")
        return self._entries[name]

    def options(self, name: str) -> type[Options]:
        return self.get(name).Options

    def resolve(self, section: dict, where: str) -> dict:
        """A config section that names an entry (``{name: ..., option: value}``) with every option checked
        and every default filled in; an unknown name or option raises ``OptionError`` naming the field."""
        name = section.get("name")
        if name not in self:
            raise OptionError(f"{where}.name: unknown {self.kind} {name!r} (registered: {', '.join(self.names())})")
        return {"name": name, **self.options(name).parse(section, where).as_dict()}

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self.discover()
        return name in self._entries
