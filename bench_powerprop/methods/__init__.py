"""Method registry: every module in this package registers its methods by name on import.

Adding a baseline is one file here with a ``@register_method`` class, plus grid rows
in a config. ``METHODS`` maps the name to the class.
"""

from __future__ import annotations

import importlib
import pkgutil

from bench_powerprop.methods.base import METHODS, Method, register_method


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(METHODS)}")
    return METHODS[name]


_discover()

__all__ = ["METHODS", "Method", "get_method", "register_method"]
