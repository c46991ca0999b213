"""YAML as configs and templates are read: one problem, one line naming the file (or the
override) and where in it. ``1e-3`` is a float and a key given twice is refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

from fake2real.errors import ConfigError


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


def load_override_value(item: str, key: str, raw: str) -> Any:
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
