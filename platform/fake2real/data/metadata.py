"""A folder of images described by one metadata file (CSV or Parquet): reading it and resolving its labels.

Shared by the ``folder`` dataset (``data/datasets/folder.py``) and the import of synthetic images
made elsewhere (``data/imported.py``). The file lies under the images' root (local or a URI),
one row per image; ``path`` is relative to that root and must stay under it (no ``../`` or
symlink out: on a shared cluster a metadata file must not read the nodes' files). Labels are value
names or, when the names are given, integer indices into them. Every problem is one line naming
the file (and the row).
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fake2real.data.storage import filesystem
from fake2real.errors import DataError

DEFAULT_FILES = ("metadata.csv", "metadata.parquet")
# Read as text whatever they look like: "007" stays a name, not the number 7.
TEXT_COLUMNS = ("path", "class", "bias", "split", "prompt", "model", "seed")


@dataclass
class Metadata:
    name: str  # the file as errors name it: the root as given, then the file's name
    table: pa.Table  # the text columns above as strings; others as the file holds them
    digest: str  # sha256 of the file's bytes (16 hex)
    is_csv: bool
    root: str  # the images' root as given (local folder or URI): listed paths must stay under it

    def where(self, index: int) -> str:
        """Row ``index`` (0-based) as the user finds it: a CSV's line, a Parquet file's row."""
        return f"line {index + 2}" if self.is_csv else f"row {index + 1}"

    def column(self, name: str) -> list:
        return self.table[name].to_pylist()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _stays_inside(root: str) -> Callable[[str], bool]:
    """A test of a listed path: does ``root/path`` stay under ``root``? On a local disk after
    resolving symlinks (a link may point anywhere); on an object store, which has none, by the
    path's normalised form. Nothing is opened: this runs before any image is read."""
    fs, base = filesystem(root)
    if not isinstance(fs, pafs.LocalFileSystem):
        def by_name(path: str) -> bool:
            norm = posixpath.normpath(path)
            return not (norm == ".." or norm.startswith(("../", "/")))
        return by_name
    real_root = Path(os.path.realpath(base))
    parents: dict[str, str] = {}  # folder -> its real path: a folder of many images is resolved once

    def resolved(path: str) -> bool:
        parent, leaf = os.path.split(os.path.join(base, path))
        if leaf in ("", ".", ".."):
            real = os.path.realpath(os.path.join(parent, leaf))
        else:
            if parent not in parents:
                parents[parent] = os.path.realpath(parent)
            real = os.path.join(parents[parent], leaf)
            if os.path.islink(real):
                real = os.path.realpath(real)
        return Path(real).is_relative_to(real_root)  # by path components, not a string prefix
    return resolved


def _locate(root: str, metadata: str | None) -> tuple[pafs.FileSystem, str, str]:
    """(filesystem, path, name for errors) of the metadata file; None: metadata.csv, else metadata.parquet."""
    fs, base = filesystem(root)
    shown = str(root).rstrip("/")
    candidates = [metadata] if metadata else list(DEFAULT_FILES)
    inside = _stays_inside(root)
    for candidate in candidates:
        if not inside(candidate.lstrip("/")):  # under the root, as the images it lists (also not by a symlink)
            raise DataError(f"metadata file '{candidate}' leaves the images' root folder {shown}")
        path = f"{base}/{candidate.lstrip('/')}"
        if fs.get_file_info(path).type == pafs.FileType.File:
            return fs, path, f"{shown}/{candidate.lstrip('/')}"
    tried = f"{candidates[0]} (or {candidates[1]})" if len(candidates) > 1 else candidates[0]
    raise DataError(f"missing metadata file {shown}/{tried}")


def _read_bytes(root: str, metadata: str | None) -> tuple[bytes, str]:
    fs, path, name = _locate(root, metadata)
    with fs.open_input_stream(path) as stream:
        return stream.read(), name


def metadata_digest(root: str, metadata: str | None) -> str:
    """sha256 (16 hex) of the metadata file's bytes: a changed file is another pool."""
    return hashlib.sha256(_read_bytes(root, metadata)[0]).hexdigest()[:16]


def _parse(data: bytes, name: str) -> tuple[pa.Table, bool]:
    suffix = name.rsplit(".", 1)[-1].lower()
    if suffix not in ("csv", "parquet"):
        raise DataError(f"{name}: a metadata file must be .csv or .parquet")
    try:
        if suffix == "csv":
            options = pacsv.ConvertOptions(
                column_types={c: pa.string() for c in TEXT_COLUMNS},
                null_values=[""], strings_can_be_null=True,  # only an empty cell is missing: "NA" may be a name
            )
            table = pacsv.read_csv(io.BytesIO(data), convert_options=options)
        else:
            table = pq.read_table(pa.BufferReader(data))
        # Names are decoded on first use: a binary file's first line fails here (UnicodeDecodeError).
        _ = table.column_names
    except (pa.ArrowException, ValueError, OSError) as exc:
        expected = "CSV (UTF-8 text, a header line first)" if suffix == "csv" else "Parquet"
        raise DataError(f"{name}: cannot read it as {expected}: {_first_line(exc)}") from None
    return table, suffix == "csv"


def read_metadata(root: str, metadata: str | None, required: tuple[str, ...], what: str) -> Metadata:
    """The metadata file under ``root`` with its ``required`` columns and at least one row;
    ``what`` says in errors what the rows are (e.g. "the folder dataset")."""
    data, name = _read_bytes(root, metadata)
    table, is_csv = _parse(data, name)
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise DataError(f"{name}: missing column '{missing[0]}' (columns: {', '.join(table.column_names)}; needs {', '.join(required)})")
    if table.num_rows == 0:
        raise DataError(f"{name}: no rows ({what} needs one row per image: {', '.join(required)})")
    for column in TEXT_COLUMNS:
        kind = table.schema.field(column).type if column in table.column_names else pa.string()
        if column != "seed" and kind != pa.string():  # Parquet: integer labels become their text
            try:
                table = table.set_column(table.column_names.index(column), column, pc.cast(table[column], pa.string()))
            except pa.ArrowException:
                raise DataError(f"{name}: column '{column}' must hold text or integers, not {kind}") from None
    return Metadata(name, table, hashlib.sha256(data).hexdigest()[:16], is_csv, str(root))


def label_names(values: list) -> list[str]:
    """The distinct labels in order: numerically when all are integers (so "10" follows "9")."""
    distinct = sorted({v for v in values if v is not None})
    if all(v.isdigit() for v in distinct):
        return sorted(distinct, key=int)
    return distinct


def resolve_labels(meta: Metadata, column: str, names: list[str] | None) -> tuple[pa.Array, list[str]]:
    """Indices of ``column``'s labels and the value names: ``names`` when given (labels may then
    also be integer indices into them), else the labels' distinct values (``label_names``)."""
    values = meta.table[column]
    if values.null_count:
        raise DataError(f"{meta.name}: {meta.where(values.to_pylist().index(None))}: empty {column}")
    given = names is not None
    names = list(names) if given else label_names(values.to_pylist())
    indices = pc.index_in(values, value_set=pa.array(names, pa.string())).to_pylist()
    for row, index in enumerate(indices):
        if index is None:
            value = values[row].as_py()
            if not (given and value.isdigit() and int(value) < len(names)):
                raise DataError(f"{meta.name}: {meta.where(row)}: unknown {column} '{value}' (known: {', '.join(names)})")
            indices[row] = int(value)
    return pa.array(indices, pa.int64()), names


def relative_paths(meta: Metadata) -> list[str]:
    """The ``path`` column: each relative to the root and staying under it, each listed once."""
    first: dict[str, int] = {}
    paths = meta.column("path")
    inside = _stays_inside(meta.root)
    for row, path in enumerate(paths):
        if not path:
            raise DataError(f"{meta.name}: {meta.where(row)}: empty path")
        if path.startswith("/") or "://" in path:
            raise DataError(f"{meta.name}: {meta.where(row)}: path '{path}' must be relative to the images' root folder")
        if not inside(path):
            raise DataError(f"{meta.name}: {meta.where(row)}: path '{path}' leaves the images' root folder {meta.root.rstrip('/')}")
        if path in first:
            raise DataError(f"{meta.name}: {meta.where(row)}: path '{path}' is listed twice (first at {meta.where(first[path])})")
        first[path] = row
    return paths


def check_present(fs: pafs.FileSystem, paths: list[str], shown: list[str] | None = None) -> None:
    """Every listed image exists and is a file (``shown``: how errors name them; default the
    paths, quoted: a trailing space in a listed path is the usual cause of a missing image)."""
    infos = fs.get_file_info(paths)
    for kind, problem in ((pafs.FileType.NotFound, "is missing ({} missing in all)"),
                          (pafs.FileType.Directory, "is a directory, not an image file ({} in all)")):
        found = [i for i, info in enumerate(infos) if info.type == kind]
        if found:
            raise DataError(f"listed image '{(shown or paths)[found[0]]}' {problem.format(len(found))}")
