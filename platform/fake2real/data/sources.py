"""What a table read from a folder of the user's files was made of: each file's size and
modification time, stored beside the table (``sources.parquet``, written before ``table.json``)
with their digest in its ``table.json`` (``extra.sources_digest``).

The table's name covers the folder and its metadata file's bytes, not the images: an image edited
in place, its metadata untouched, would be reused stale. The next run compares the files with
what the table recorded and names the first that changed (``changed_source``). Checked once per
process and table: a sweep's experiments and a search's trials each reach the table again.
"""

from __future__ import annotations

import hashlib
import os

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fake2real.data.storage import Location, filesystem, get_bytes, is_file, put_bytes
from fake2real.data.table import TableInfo, read_info, serialize
from fake2real.errors import DataError

SOURCES_FILE = "sources.parquet"
DIGEST_KEY = "sources_digest"  # in table.json's extra
_UNCHANGED: set[tuple[str, str]] = set()  # (table, digest) found unchanged in this process


def stamps(fs: pafs.FileSystem, base: str, relative: list[str]) -> pa.Table:
    """Each file's size and modification time (ns; -1 for a file that is gone or has none),
    ``relative`` to ``base`` on ``fs``, in the order given."""
    infos = fs.get_file_info([f"{base}/{path}" for path in relative]) if relative else []
    found = [info.type == pafs.FileType.File for info in infos]
    return pa.table({
        "path": pa.array(relative, pa.string()),
        "size": pa.array([info.size if ok else -1 for info, ok in zip(infos, found)], pa.int64()),
        "mtime_ns": pa.array([(info.mtime_ns if info.mtime_ns is not None else -1) if ok else -1 for info, ok in zip(infos, found)],
                             pa.int64()),
    })


def digest(table: pa.Table) -> str:
    """sha256 (16 hex) of the stamps, row by row."""
    lines = (f"{p}\t{s}\t{m}\n" for p, s, m in zip(*(table[c].to_pylist() for c in ("path", "size", "mtime_ns"))))
    return hashlib.sha256("".join(lines).encode()).hexdigest()[:16]


def record(folder: str | os.PathLike, table: pa.Table, info: TableInfo) -> None:
    """Store ``table`` (``stamps``) beside the table at ``folder`` and its digest in ``info``, whose
    ``table.json`` is written after."""
    put_bytes(Location(folder) / SOURCES_FILE, serialize(table))
    info.extra = {**info.extra, DIGEST_KEY: digest(table)}


def changed_source(folder: str | os.PathLike, root: str) -> tuple[str, bool] | None:
    """``(path, gone)``: the first file under ``root`` that differs from what the finished table at
    ``folder`` recorded (``gone``: it is no longer there); None when none does, or when the table
    recorded nothing (written before this check, or from a dataset that is not checked)."""
    recorded = read_info(folder).extra.get(DIGEST_KEY)
    key = (str(Location(folder)), str(recorded))
    if recorded is None or key in _UNCHANGED:
        return None
    where = Location(folder) / SOURCES_FILE
    then = pq.read_table(pa.BufferReader(get_bytes(where))) if is_file(where) else None
    if then is None or digest(then) != recorded:
        raise DataError(f"table {folder}: its {SOURCES_FILE} is missing or not the one its table.json records; remove the folder")
    fs, base = filesystem(root)
    now = stamps(fs, base, then["path"].to_pylist())
    changed = next((new for old, new in zip(then.to_pylist(), now.to_pylist()) if old != new), None)
    if changed is None:
        _UNCHANGED.add(key)
        return None
    return changed["path"], changed["size"] < 0
