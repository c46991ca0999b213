"""What a debiasing method is: its loss, sampler weights, freezing and hyperparameter space.

A method lives in one file under ``train/methods/`` that subclasses ``Method`` and decorates it
with ``@register``; the package imports every module in the folder, so adding a method touches
that file and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from fake2real.errors import ConfigError


@dataclass(frozen=True)
class Hyperparameter:
    """Declared once: its default and its search distribution.

    ``distribution`` is ``("loguniform", low, high)``, ``("uniform", low, high)``,
    ``("int", low, high)`` or ``("choice", [values])``.
    """

    name: str
    default: Any
    distribution: tuple

    def check(self, value: Any, method: str) -> Any:
        """The value, or a one-line error if it lies outside the declared distribution."""
        field = f"config: train.method_params.{method}.{self.name}"
        kind, *args = self.distribution
        if kind == "choice":
            if value not in args[0]:
                raise ConfigError(f"{field}: {value!r} is not one of {args[0]}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field}: expected a number, got {value!r}")
        low, high = args
        if not low <= value <= high:
            raise ConfigError(f"{field}: {value} is outside [{low}, {high}]")
        return int(value) if kind == "int" else float(value)


@dataclass
class Reducer:
    """How a method sees the other data-parallel workers (identity for one process)."""

    world_size: int = 1
    sum: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor


class Method:
    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[Hyperparameter, ...]] = ()
    # Whether the loss or sampler needs group labels of the training data.
    uses_groups: ClassVar[bool] = False

    def __init__(self, params: dict, train_group_counts: np.ndarray):
        self.params = resolve_params(type(self), params)
        self.train_group_counts = np.asarray(train_group_counts, dtype=np.float64)

    def freeze(self, model: torch.nn.Module) -> None:
        """Set ``requires_grad=False`` on what this method does not train (default: nothing)."""

    def loss(self, per_sample_loss: torch.Tensor, groups: torch.Tensor, reducer: Reducer) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State that must survive a restart from checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def resolve_params(method: type[Method], params: dict) -> dict:
    known = {h.name: h for h in method.hyperparameters}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"config: train.method_params.{method.name}.{unknown[0]}: unknown parameter "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )
    return {name: h.check(params[name], method.name) if name in params else h.default for name, h in known.items()}


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    if cls.name in METHODS:
        raise RuntimeError(f"method '{cls.name}' registered twice")
    METHODS[cls.name] = cls
    return cls
