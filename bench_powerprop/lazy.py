"""A module imported on first attribute access.

Registration modules (methods, scorers, datasets, models) are imported by config validation,
which must stay torch-free and fast; their code uses torch only when it runs. They write
``torch = LazyModule("torch")`` instead of ``import torch``; each attribute is looked up once and
then cached on the proxy, so hot paths pay a plain attribute access.
"""

from __future__ import annotations

import importlib


class LazyModule:
    def __init__(self, name: str):
        self.__dict__["_name"] = name

    def __getattr__(self, attribute: str):
        value = getattr(importlib.import_module(self.__dict__["_name"]), attribute)
        self.__dict__[attribute] = value
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_name']!r}>"


def no_grad(function):
    """``torch.no_grad()`` as a decorator that imports torch only when the function runs."""
    import functools

    @functools.wraps(function)
    def without_grad(*args, **kwargs):
        import torch

        with torch.no_grad():
            return function(*args, **kwargs)

    return without_grad
