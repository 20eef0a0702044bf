"""Method registry: every module in this package registers its method by name on first use.

Adding a method is one file here with an options dataclass and a ``@METHODS.register`` class
(see ``base.py`` for the hooks), plus grid rows in a config.
"""

from __future__ import annotations

from bench_powerprop.methods.base import METHODS, Method, Phase

get_method = METHODS.get

__all__ = ["METHODS", "Method", "Phase", "get_method"]
