"""A module imported at its first use, not when the module naming it is imported.

A config is parsed by reading the parts' declarations (a method's hyperparameters, a backend's
section), and those live in files whose code needs torch: ``torch = lazy_module("torch")`` there
keeps parsing a config free of torch (seconds on a laptop; issue 30). The first attribute read
imports the module (``importlib``'s lock makes that safe from several threads); later reads cost a
dictionary lookup.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any


class _LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        module = sys.modules.get(self._name)
        if module is None:
            module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported at first use>"


def lazy_module(name: str) -> ModuleType:
    """``name``, imported when an attribute is first read."""
    return _LazyModule(name)  # type: ignore[return-value]  # reads like the module it stands for
