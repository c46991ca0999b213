"""Typed experiment config: YAML in, ``key=value`` overrides, validated before any Ray work.

The defaults *are* the embedded default: the built-in ``shapes`` benchmark, local Ray, MLflow in
sqlite. Every error names the field in one line (``config: train.real.lr: ...``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import ValidationError, model_validator

from fake2real.errors import ConfigError
from fake2real.sections import DatasetConfig, GenerationConfig, SweepConfig, TrackingConfig, TrainConfig, _Section


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping (``path``: its dotted key path in the document)."""

    def __init__(self, path: str, first: yaml.Mark, again: yaml.Mark):
        super().__init__(f"duplicate key '{path}'")
        self.path, self.first, self.again = path, first, again


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; read it as the float everyone means. A key
    given twice in one mapping is refused: PyYAML would silently keep the last value."""

    def construct_document(self, node):
        # Checked on the composed tree, before construction: merge keys (``<<: *base``) rewrite
        # the mappings they touch while constructing, and their overrides are not duplicates.
        _refuse_duplicates(self, node, (), set())
        return super().construct_document(node)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*\.[\d_]*(?:[eE][-+]?\d+)?|\.\d[\d_]*(?:[eE][-+]?\d+)?|\d[\d_]*[eE][-+]?\d+|\.(?:inf|nan))$", re.I),
    list("-+0123456789."),
)


def _refuse_duplicates(loader: _Loader, node: yaml.Node, path: tuple[str, ...], seen: set) -> None:
    if node in seen:  # an alias: checked where its anchor is
        return
    seen.add(node)
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicates(loader, item, path + (str(index),), seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _refuse_duplicates(loader, value_node, path, seen)
                continue
            key = loader.construct_object(key_node, deep=True)
            child = path + (str(key),)
            try:
                if key in first:
                    raise _DuplicateKey(".".join(child), first[key], key_node.start_mark)
                first[key] = key_node.start_mark
            except TypeError:  # an unhashable key: PyYAML's own error names it
                pass
            _refuse_duplicates(loader, value_node, child, seen)


def _mark_at(text: str, index: int) -> yaml.Mark:
    line = text.count("\n", 0, index)
    return yaml.Mark(None, index, line, index - (text.rfind("\n", 0, index) + 1), None, None)


def _yaml_problem(exc: yaml.YAMLError, text: str, where: Callable[[yaml.Mark], str]) -> tuple[str | None, str]:
    """Where a YAML error points (``where(mark)``; None: nowhere) and what it says, in one line."""
    if isinstance(exc, yaml.reader.ReaderError):  # a control character in the text
        return where(_mark_at(text, exc.position)), f"unacceptable character #x{exc.character:04x}: {exc.reason}"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return None, " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context
    if exc.problem and exc.context:  # e.g. "while parsing a flow mapping": where it started
        problem += f" ({exc.context}{' at ' + where(exc.context_mark) if exc.context_mark else ''})"
    return (where(mark) if mark else None), " ".join(str(problem).split())


def _line_column(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def load_yaml_file(path: Path, source: str) -> Any:
    """A YAML file read with our loader; any problem is one ConfigError line naming ``source``
    (the file, or the field that gave it) and the line and column (1-based)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {source} is not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except _DuplicateKey as exc:
        raise ConfigError(f"config: {source}: line {exc.again.line + 1}: duplicate key '{exc.path}' (first at line {exc.first.line + 1})") from None
    except yaml.YAMLError as exc:
        where, problem = _yaml_problem(exc, text, _line_column)
        raise ConfigError(f"config: {source}: {where + ': ' if where else ''}not valid YAML: {problem}") from None


def _override_value(item: str, key: str, raw: str) -> Any:
    """An override's value read as YAML; a problem names the override and its column in it."""
    def column(mark: yaml.Mark) -> str:  # 1-based, in the whole ``key=value`` the user typed
        return f"column {len(key) + 1 + mark.index + 1}"

    try:
        return yaml.load(raw, Loader=_Loader)
    except _DuplicateKey as exc:
        raise ConfigError(f"config: override '{item}': duplicate key '{key}.{exc.path}' at {column(exc.again)} (first at {column(exc.first)})") from None
    except yaml.YAMLError as exc:
        where, problem = _yaml_problem(exc, raw, column)
        raise ConfigError(f"config: override '{item}': not valid YAML{' at ' + where if where else ''}: {problem}") from None


# How a job runs, not what it computes: left out of the config's digest (a job's identity).
HOW_IT_RUNS = ("train.loader", "train.compile", "train.max_failures", "train.checkpoints_to_keep", "train.resource_wait_s", "sweep.cost")
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

    @model_validator(mode="after")
    def _finite(self) -> "ExperimentConfig":
        # Typed floats refuse inf and nan themselves (_Section); free-form values (method params,
        # filters) are checked here, as everything else in the config.
        found = _non_finite(self.model_dump(), ())
        if found:
            raise ValueError(f"{'.'.join(found[0])}: Input should be a finite number (got {found[1]!r})")
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
        node[leaf] = _override_value(item, key, raw) if raw != "" else ""
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
