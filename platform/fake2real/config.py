"""Typed experiment config: YAML in, ``key=value`` overrides, validated before any Ray work.

The defaults *are* the embedded default: the built-in ``shapes`` benchmark, local Ray, MLflow in
sqlite. Every error names the field in one line (``config: train.real.lr: ...``).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, model_validator

from fake2real.errors import ConfigError
from fake2real.sections import DatasetConfig, GenerationConfig, SweepConfig, TrackingConfig, TrainConfig, _Section


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; read it as the float everyone means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.[\d_]*(?:[eE][-+]?\d+)?|\.\d[\d_]*(?:[eE][-+]?\d+)?|\d[\d_]*[eE][-+]?\d+|\.(?:inf|nan))$", re.I),
    list("-+0123456789."),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


# How a job runs, not what it computes: left out of the config's digest (a job's identity).
HOW_IT_RUNS = ("train.loader", "train.compile", "train.max_failures", "train.checkpoints_to_keep", "sweep.cost")
# Fields added after results were stored join the digest only when set: stored jobs keep their keys.
ADDED_LATER = {
    "train.real.lr_schedule": "constant", "train.synthetic.lr_schedule": "constant",
    "dataset.metadata": None, "dataset.class_names": None, "dataset.bias_names": None, "dataset.table": None,
    "generation.folder": {"root": None, "metadata": None},
}


class ExperimentConfig(_Section):
    name: str = "shapes"
    seed: int = 0
    output_dir: str = "outputs"
    dataset: DatasetConfig = DatasetConfig()
    generation: GenerationConfig = GenerationConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    sweep: SweepConfig = SweepConfig()

    @model_validator(mode="after")
    def _pretrained_on_real_data(self) -> "ExperimentConfig":
        if self.dataset.name != "shapes" and self.train.model.startswith("resnet") and self.train.pretrained is None:
            raise ValueError(f"train.pretrained: a {self.train.model} on '{self.dataset.name}' starts from ImageNet weights, as in the paper: "
                             "set it to a local torchvision weights file (e.g. resnet50-11ad3fa6.pth), or to none for random weights")
        if self.dataset.table is not None and self.sweep.bias_ratios is not None:
            raise ValueError("sweep.bias_ratios: a finished table (dataset.table) has the bias ratio it was made with; unset sweep.bias_ratios")
        return self

    def digest(self, *sections: str) -> str:
        """Stable hash of the named sections (all if none): the identity of a job."""
        data = self.model_dump(mode="json")
        for dotted in HOW_IT_RUNS:
            _drop(data, dotted)
        for dotted, default in ADDED_LATER.items():
            if _get(data, dotted) == default:
                _drop(data, dotted)
        if sections:
            data = {name: _get(data, name) for name in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _drop(data: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    _get(data, ".".join(parents)).pop(leaf, None)


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
        node[leaf] = _yaml(raw) if raw != "" else ""
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
        if not path.is_file():
            raise ConfigError(f"config: file not found: {path}")
        try:
            loaded = _yaml(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config: {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config: {path} must hold a mapping at the top level")
        data = merge(data, loaded)
    if overrides:
        data = merge(data, overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error_line(exc)) from None
