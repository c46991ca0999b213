"""What a debiasing method is: its loss, sampler, freezing, hyperparameter space and stages.

A method lives in one file under ``train/methods/`` that subclasses ``Method`` and decorates it
with ``@register``; the package imports every module in the folder, so adding a method touches
that file and nothing else. The training loop calls these hooks and nothing method-specific:

- ``loss``: the batch loss from a ``Batch``: per-sample cross-entropies, logits, labels, group
  indices and penultimate features (all from the one training forward, so a loss on logits or
  features, e.g. a logit adjustment or a feature-alignment penalty, needs no other change);
- ``epoch_indices``: the training-set indices of one epoch (default: a seeded permutation);
- ``warmup_epochs`` / ``after_warmup``: a first model trained that many epochs whose per-sample
  correctness the method sees before the model is re-initialized (JTT's identification model);
- ``freeze``: what is not trained;
- ``base_method`` / ``posthoc``: a method that trains as another one (e.g. DFR trains ERM) and
  then refits on the finished model's features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from fake2real.errors import ConfigError
from fake2real.lazy import lazy_module

torch = lazy_module("torch")  # imported at first use: a config reads the declarations here without torch


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


@dataclass(frozen=True)
class Batch:
    """What a method's loss sees of one training step's batch on this worker (N samples).

    ``logits`` and ``per_sample_loss`` are float32; ``features`` keep the forward's precision
    (bf16 under autocast on GPUs): cast them for numerically delicate statistics. All of them are
    outputs of the DDP-wrapped forward, so gradients through any of them are synchronised.
    """

    per_sample_loss: torch.Tensor  # (N,) cross-entropy of each sample
    logits: torch.Tensor  # (N, classes)
    labels: torch.Tensor  # (N,) int64
    groups: torch.Tensor  # (N,) int64: the method's groups ((y, b), or (y, b, g) for a mix)
    features: torch.Tensor  # (N, D) the penultimate features the model's ``fc`` maps to logits


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
    # A post-hoc method trains its stages as ``base_method`` and then refits (see ``posthoc``).
    base_method: ClassVar[str | None] = None

    def __init__(self, params: dict, train_groups: np.ndarray, num_groups: int):
        """``train_groups``: the group index of every training sample (in table order)."""
        self.params = resolve_params(type(self), params)
        self.train_groups = np.asarray(train_groups, dtype=np.int64)
        self.train_group_counts = np.bincount(self.train_groups, minlength=num_groups).astype(np.float64)

    @property
    def warmup_epochs(self) -> int:
        return 0

    def after_warmup(self, correct: np.ndarray) -> None:
        """Sees whether the warm-up model classified each training sample correctly."""

    def epoch_indices(self, epoch: int, generator: torch.Generator) -> torch.Tensor:
        """Training-set indices of one epoch, drawn with ``generator`` (seeded per epoch)."""
        return torch.randperm(len(self.train_groups), generator=generator)

    def freeze(self, model: torch.nn.Module) -> None:
        """Set ``requires_grad=False`` on what this method does not train (default: nothing)."""

    def loss(self, batch: Batch, reducer: Reducer) -> torch.Tensor:
        """The scalar this worker's step minimises (DDP then averages the gradients over workers)."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        """State that must survive a restart from checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @classmethod
    def posthoc(cls, features: dict, seed: int) -> dict:
        """Refit on a finished model's features; returns ``{"predict": fn, "params": {...}}``.

        Only for methods with a ``base_method``. ``features[split]`` holds ``x`` (N, D) and
        ``labels``, ``groups`` arrays for the real ``val`` and ``test`` splits.
        """
        raise NotImplementedError(f"method '{cls.name}' has no post-hoc step")


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
