"""Method registry: every module in this folder registers its method on import."""

from __future__ import annotations

import importlib
import pkgutil

from fake2real.errors import ConfigError
from fake2real.train.methods.base import METHODS, Batch, Hyperparameter, Method, Reducer, register, resolve_params

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def get_method(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"config: unknown method '{name}' (known: {', '.join(sorted(METHODS))})") from None


__all__ = ["METHODS", "Batch", "Hyperparameter", "Method", "Reducer", "get_method", "register", "resolve_params"]
