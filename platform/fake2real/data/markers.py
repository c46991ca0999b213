"""Done markers: a small JSON file written last, whole or absent, locally and on object stores.

A job whose marker is there is finished and is reused, never redone: a table's ``table.json``
(``data/table.py``), a stage's ``stage_result.json``, a searched cell's ``best.json``.
"""

from __future__ import annotations

import json
import os

from fake2real.data.storage import Location, get_bytes, is_file, put_bytes


def write_marker(location: str | os.PathLike, payload: dict) -> Location:
    return put_bytes(location, json.dumps(payload, indent=2, sort_keys=True).encode())


def read_marker(location: str | os.PathLike) -> dict | None:
    """The marker's payload; None when the job has not finished."""
    return json.loads(get_bytes(location)) if is_file(location) else None
