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

    def _module(self) -> ModuleType:
        name = object.__getattribute__(self, "_name")
        return sys.modules.get(name) or importlib.import_module(name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)

    # Writes go to the module too (a test's monkeypatch of ``ray.cluster_resources`` patches Ray's).
    def __setattr__(self, attribute: str, value: Any) -> None:
        if attribute == "_name":
            object.__setattr__(self, attribute, value)
        else:
            setattr(self._module(), attribute, value)

    def __delattr__(self, attribute: str) -> None:
        delattr(self._module(), attribute)

    def __repr__(self) -> str:
        return f"<module {object.__getattribute__(self, '_name')!r}, imported at first use>"


def lazy_module(name: str) -> ModuleType:
    """``name``, imported when an attribute is first read."""
    return _LazyModule(name)  # type: ignore[return-value]  # reads like the module it stands for
