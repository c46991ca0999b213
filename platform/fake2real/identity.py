"""Identity: every job — table, pool, draw, stage, search cell, sweep — is named by a key of
what determines it, so running it again finds it (docs/design.md, "Identity and resume").

One function makes every key. Fields added after results were stored join a key only when set
(``unset``): the keys of stored jobs do not change when a new option appears.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any


def key(data: Any, unset: dict[str, Any] | None = None, length: int = 16) -> str:
    """A stable hex key of ``data``: JSON (keys sorted) or, for a ``str``, the text itself.

    ``unset`` maps dotted paths to the value meaning "not set": such fields are left out."""
    text = data if isinstance(data, str) else json.dumps(without_unset(data, unset or {}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def without_unset(data: Any, unset: dict[str, Any]) -> Any:
    """A copy of ``data`` without the fields of ``unset`` (dotted path → its unset value) that hold it."""
    if not unset:
        return data
    data = copy.deepcopy(data)
    for dotted, default in unset.items():
        if _get(data, dotted) == default:
            drop(data, dotted)
    return data


_ABSENT = object()


def _get(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def drop(data: dict, dotted: str) -> None:
    """Remove the field at ``dotted`` (a missing one is no error)."""
    *parents, leaf = dotted.split(".")
    node = _get(data, ".".join(parents)) if parents else data
    if isinstance(node, dict):
        node.pop(leaf, None)
