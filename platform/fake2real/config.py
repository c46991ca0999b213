"""Typed experiment config: YAML in, ``key=value`` overrides, validated before any Ray work.

The defaults *are* the embedded default: the built-in ``shapes`` benchmark, local Ray, MLflow in
sqlite. Every error names the field in one line (``config: train.real.lr: ...``).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, ValidationError, ValidationInfo, model_validator

from fake2real.errors import ConfigError
from fake2real.yaml_file import load_override_value, load_yaml_file
from fake2real.identity import drop, without_unset
from fake2real import identity
from fake2real.data.datasets import DATASETS
from fake2real.generate.backends import BACKENDS
from fake2real.generate.diffusers_backend import FIRST_SETTINGS
from fake2real.section_base import Seed, _Section
from fake2real.sections import DatasetConfig, GenerationConfig, SweepConfig, TrackingConfig, TrainConfig
from fake2real.train.methods import METHODS, resolve_params


# How a job runs, not what it computes: left out of the config's digest (a job's identity).
HOW_IT_RUNS = ("train.loader", "train.compile", "train.max_failures", "train.checkpoints_to_keep", "train.resource_wait_s", "sweep.cost",
               "sweep.max_concurrent_experiments", "sweep.max_experiments")
# Fields added after results were stored join the digest only when set: stored jobs keep their keys.
ADDED_LATER = {
    "train.real.lr_schedule": "constant", "train.synthetic.lr_schedule": "constant",
    "dataset.metadata": None, "dataset.class_names": None, "dataset.bias_names": None, "dataset.table": None,
    "sweep.axes": {},
    "train.input_size": None,
    # A dataset's own section that came after stored jobs (all but the built-in world's).
    **{f"dataset.{name}": d.Settings().model_dump(mode="json") for name, d in DATASETS.items() if d.Settings and not d.section_in_every_key},
    "train.real.head_warmup_epochs": 0, "train.synthetic.head_warmup_epochs": 0, "train.asb.head_warmup_epochs": 0,
    # A search's own key (search_plan.cell_key) holds every search setting: its searches are new ones.
    "sweep.search.head_warmup": True,
}
_GRID_CHECKED = "sweep.axes checked"  # validation context of ExperimentConfig.cell
# What a sweep varies by its own fields, or what names the job rather than its computation: no axis.
NOT_AXES = {"seed": "use sweep.seeds", "dataset.bias_ratio": "use sweep.bias_ratios", "train.mixture": "use sweep.mixtures",
            "train.method": "use sweep.methods", "name": "it names the job", "output_dir": "it says where results go",
            "tracking": "it says where runs are logged", "sweep": "it shapes the sweep itself"}
# Keys moved into their backend's section: the old key is refused, naming the new one; a job's
# digest reads the new key at its old place, so stored jobs keep their keys.
MOVED = {f"generation.{key}": f"generation.diffusers.{key}" for key in FIRST_SETTINGS}


class ExperimentConfig(_Section):
    name: str = "shapes"
    seed: Seed = 0
    output_dir: str = "outputs"
    dataset: DatasetConfig = DatasetConfig()
    generation: GenerationConfig = GenerationConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    sweep: SweepConfig = SweepConfig()
    # output_dir and tracking.uri as written before local_paths.resolve_paths made them absolute:
    # the sweep's key (the only key holding them) keeps them, so a sweep keeps its key.
    _written: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        generation = data.get("generation") if isinstance(data, dict) else None
        for old, new in MOVED.items():
            if isinstance(generation, dict) and old.removeprefix("generation.") in generation:
                raise ValueError(f"{old} moved to {new}")
        return data

    @model_validator(mode="after")
    def _pretrained_on_real_data(self) -> "ExperimentConfig":
        if DATASETS[self.dataset.name].photographs and self.train.model != "small_cnn" and self.train.pretrained is None:
            weights = "imagenet (its packaged weights)" if self.train.model == "efficientnet_lite0" else \
                "a local torchvision weights file (e.g. resnet50-11ad3fa6.pth)"
            raise ValueError(f"train.pretrained: a {self.train.model} on '{self.dataset.name}' starts from ImageNet weights, as in the paper: "
                             f"set it to {weights}, or to none for random weights")
        if self.dataset.table is not None and self.sweep.bias_ratios is not None:
            raise ValueError("sweep.bias_ratios: a finished table (dataset.table) has the bias ratio it was made with; unset sweep.bias_ratios")
        return self

    @model_validator(mode="after")
    def _finite(self) -> "ExperimentConfig":
        # Typed floats refuse inf and nan themselves (_Section); free-form values (method params,
        # filters) are checked here, as everything else in the config.
        found = _non_finite(self.model_dump(), ())
        if found:
            raise ValueError(f"{'.'.join(found[0])}: Input should be a finite number (got {found[1]!r})")
        return self

    @model_validator(mode="after")
    def _method_params(self) -> "ExperimentConfig":
        # Every entry, not only the methods a job runs (after _finite: a nan is named as such): a
        # mistyped name or a value out of range would otherwise wait unseen for the sweep that runs it.
        for name, params in self.train.method_params.items():
            try:
                resolve_params(METHODS[name], params)
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("config: ")) from None
        return self

    @model_validator(mode="after")
    def _axes(self, info: ValidationInfo) -> "ExperimentConfig":
        axes = self.sweep.axes
        if not axes or (info.context or {}).get(_GRID_CHECKED):
            return self
        dumped = self.model_dump()
        for key, values in axes.items():
            _check_axis(dumped, key, values)
        base = {**dumped, "sweep": {**dumped["sweep"], "axes": {}}}
        for point in axis_points(axes):  # every point as a whole: a value may only fail with another's
            try:
                ExperimentConfig.model_validate(merge(base, nested(point)))
            except ValidationError as exc:
                raise ValueError(f"sweep.axes: at {point_label(point)}: {_error_line(exc).removeprefix('config: ')}") from None
        return self

    @classmethod
    def cell(cls, data: dict) -> "ExperimentConfig":
        """A cell of a sweep whose grid was checked (``data`` is one of its points): validated
        without checking every point of the grid again, which each of its cells would repeat."""
        return cls.model_validate(data, context={_GRID_CHECKED: True})

    def point(self) -> dict[str, Any]:
        """This config's values of the sweep's axes ({} without axes): a sweep cell's point."""
        dumped = self.model_dump(mode="json")
        return {key: _get(dumped, key) for key in self.sweep.axes}

    def real_data_only(self) -> "ExperimentConfig":
        """This config with the built-in world's synthetic-renderer knobs at their defaults: what
        its real data, and a mixture trained on real data alone, depend on (points of a sweep over
        those knobs share them)."""
        return self.model_copy(update={"dataset": self.dataset.real_part()})

    def digest(self, *sections: str) -> str:
        """Stable hash of the named sections (all if none): the identity of a job."""
        data = _as_stored(self.model_dump(mode="json"))
        for dotted, value in self._written.items():
            parent, _, leaf = dotted.rpartition(".")
            (_get(data, parent) if parent else data)[leaf] = value
        for dotted in HOW_IT_RUNS:
            drop(data, dotted)
        data = without_unset(data, ADDED_LATER)
        return identity.key({name: _get(data, name) for name in sections} if sections else data)


def axis_points(axes: dict[str, list]) -> list[dict[str, Any]]:
    """Every point of the axes' product ({key: value}), the first axis slowest; [{}] without axes."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def axis_name(key: str) -> str:
    """How an axis is shown: its key's last part (``dataset.shapes.semantic_gap`` → ``semantic_gap``)."""
    return key.rsplit(".", 1)[-1]


def point_label(point: dict[str, Any]) -> str:
    """``semantic_gap=0.5, artifact_strength=0.08``: each key by its last part (its full key when two share it)."""
    names = [axis_name(key) for key in point]
    return ", ".join(f"{key if names.count(name) > 1 else name}={value}" for (key, value), name in zip(point.items(), names))


def nested(point: dict[str, Any]) -> dict:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``."""
    out: dict = {}
    for dotted, value in point.items():
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _check_axis(dumped: dict, key: str, values: list) -> None:
    where = f"sweep.axes.{key}"
    for taken, why in NOT_AXES.items():
        if key == taken or key.startswith(taken + "."):
            raise ValueError(f"{where}: not an axis ({why})")
    if any(key == how or key.startswith(how + ".") for how in HOW_IT_RUNS):
        raise ValueError(f"{where}: not an axis (it sets how a job runs, not what it computes)")
    node: Any = dumped
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"sweep.axes: unknown config key '{key}'")
        node = node[part]
    if not values:
        raise ValueError(f"{where}: must list at least one value")
    if len({repr(v) for v in values}) != len(values):
        raise ValueError(f"{where}: values repeat ({values})")


def _as_stored(data: dict) -> dict:
    """A dump keyed as stored jobs were: moved keys at their old place, and a backend's section
    (sections came after results were stored) only when it is not at its defaults."""
    generation = data["generation"]
    for old, new in MOVED.items():
        generation[old.removeprefix("generation.")] = _get(data, new)
        drop(data, new)
    for name, backend in BACKENDS.items():
        defaults = backend.Settings().model_dump(mode="json")
        if generation[name] == {k: v for k, v in defaults.items() if f"generation.{name}.{k}" not in MOVED.values()}:
            del generation[name]
    return data


def _non_finite(value: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], float] | None:
    """The first non-finite float in a dumped config, with its key path; None: there is none."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        found = _non_finite(item, path + (str(key),))
        if found:
            return found
    return None


def _get(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data[part]
    return data


def _error_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        return f"config: unknown key '{where}'"
    if err["type"] == "value_error":  # a cross-field check: its message names the fields
        return f"config: {err['msg'].removeprefix('Value error, ')}"
    return f"config: {where}: {err['msg']} (got {err.get('input')!r})"


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.real.lr=0.01", "sweep.seeds=[0,1]"]`` → nested dict; values parsed as YAML."""
    nested: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"config: override '{item}' is not of the form key.path=value")
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config: override '{item}' conflicts with another override")
        node[leaf] = load_override_value(item, key, raw) if raw != "" else ""
    return nested


def merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    path: str | Path | None = None, overrides: list[str] | dict | None = None, base: dict | None = None
) -> ExperimentConfig:
    """Defaults ← ``base`` (a preset) ← YAML file ← overrides, validated as a whole."""
    data: dict = dict(base or {})
    if path is not None:
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"config: {path} is a directory, not a config file")
        if not path.is_file():
            raise ConfigError(f"config: file not found: {path}")
        loaded = load_yaml_file(path, str(path)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config: {path} must hold a mapping at the top level")
        data = merge(data, loaded)
    if overrides:
        data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error_line(exc)) from None
