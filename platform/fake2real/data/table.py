"""The image-table contract (docs/design.md §4): a folder of Parquet parts plus ``table.json``.

The folder may be local or in an object store (``s3://…``, ``gs://…``; see ``data/storage.py``);
the protocol is the same for both, since object stores cannot rename: parts are written in place
in the table's folder, each whole or absent, and ``table.json`` — the dataset metadata (class and
bias names, group counts) and the list of the table's parts — is written last. A folder without
``table.json`` is never a finished table; readers read exactly the parts it lists.

A *view* is a table whose rows are a selection of another table's (a draw from a synthetic
pool): its ``table.json`` names the source folder (``view_of``) and its parts, and ``rows.parquet`` the ids it
holds; it is written like any table (ids first, ``table.json`` last) and read the same way.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, field, fields

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fake2real.data.markers import read_marker, write_marker
from fake2real.data.storage import TMP_PREFIX, Location, get_bytes, is_file, list_names, path_in, put_bytes
from fake2real import identity
from fake2real.errors import DataError

REAL, SYNTHETIC = 0, 1
ROW_GROUP_ROWS = 1024  # ~25 MB of 224² JPEGs
METADATA_FILE = "table.json"

# Columns every table has; synthetic rows also fill the provenance columns.
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("image", pa.binary()),
        ("y", pa.int64()),
        ("b", pa.int64()),
        ("g", pa.int64()),
        ("split", pa.string()),
        ("prompt", pa.string()),
        ("seed", pa.int64()),
        ("generator", pa.string()),
        ("steps", pa.int64()),
        ("guidance", pa.float64()),
        # Synthetic rows: how often the row's image was rejected by a filter and made again.
        ("rejections", pa.int64()),
    ]
)
PROVENANCE = ("prompt", "seed", "generator", "steps", "guidance", "rejections")
# What every row has (a real table may leave the provenance columns out).
CORE_COLUMNS = tuple(name for name in SCHEMA.names if name not in PROVENANCE)


@dataclass
class TableInfo:
    dataset: str
    class_names: list[str]
    bias_names: list[str]
    source: str  # "real" or "synthetic"
    num_rows: int = 0
    # split -> {"y0_b1": count, ...}
    group_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_biases(self) -> int:
        return len(self.bias_names)


def group_name(y: int, b: int) -> str:
    """MLflow-safe group key, e.g. ``y1_b0``."""
    return f"y{y}_b{b}"


def pool_row_id(pool_id: str, y: int, b: int, index: int) -> str:
    """The id of image ``index`` of group (y, b) in a synthetic pool: its draws are the first k per group."""
    return f"{pool_id}-{group_name(y, b)}-{index:06d}"


def pool_row_group(row_id: str) -> tuple[int, int]:
    """The (y, b) group a pool row was made for, from its id (a drawn bias may differ from it)."""
    y, b = row_id.split("-")[1].removeprefix("y").split("_b")
    return int(y), int(b)


def count_groups(table: pa.Table) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    grouped = table.group_by(["split", "y", "b"]).aggregate([("id", "count")])
    for row in grouped.to_pylist():
        counts.setdefault(row["split"], {})[group_name(row["y"], row["b"])] = row["id_count"]
    return {split: dict(sorted(groups.items())) for split, groups in sorted(counts.items())}


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def check_writable(path: str | os.PathLike) -> Location:
    """Create ``path`` (a folder, local or a URI) or fail with one line naming it."""
    location = Location(path)
    try:
        fs, root = location.filesystem()
        fs.create_dir(root, recursive=True)
        probe = path_in(location, f".write-probe-{uuid.uuid4().hex}")
        with fs.open_output_stream(probe):
            pass
        fs.delete_file(probe)
    except (OSError, pa.ArrowException, DataError) as exc:
        raise DataError(f"output path {location} is not writable: {_reason(exc)}") from None
    return location


PART_PREFIX, PART_SUFFIX = "part-", ".parquet"


def part_names(folder: str | os.PathLike) -> list[str]:
    """The Parquet parts directly in ``folder``, in name order."""
    return list_names(folder, PART_PREFIX, PART_SUFFIX)


def clear_debris(folder: str | os.PathLike) -> int:
    """Remove the parts and temporary files of an unfinished write; returns how many."""
    location = Location(folder)
    if is_complete(location):
        raise DataError(f"table {location} is complete; not clearing it")
    fs, _ = location.filesystem()
    names = part_names(location) + list_names(location, TMP_PREFIX)
    for name in names:
        fs.delete_file(path_in(location, name))
    return len(names)


def finalize(folder: str | os.PathLike, info: TableInfo) -> Location:
    """Write ``table.json`` — last — listing the folder's parts, once they hold ``info.num_rows`` rows."""
    location = Location(folder)
    if is_complete(location):
        raise DataError(f"table {location} already exists")
    fs, _ = location.filesystem()
    names = part_names(location)
    rows = sum(pq.read_metadata(path_in(location, n), filesystem=fs).num_rows for n in names)
    if rows != info.num_rows:
        raise DataError(f"table {location}: its parts hold {rows} rows, not {info.num_rows}; remove the folder and write it again")
    write_marker(location / METADATA_FILE, {**asdict(info), "parts": names})
    return location


def reopen(folder: str | os.PathLike) -> None:
    """Make a finished table unfinished again (a pool about to grow): its ``table.json`` goes first."""
    location = Location(folder)
    if is_complete(location):
        fs, _ = location.filesystem()
        fs.delete_file(path_in(location, METADATA_FILE))


VIEW_ROWS = "rows.parquet"


def write_view(final: str | os.PathLike, source: str | os.PathLike, ids: list[str], info: TableInfo) -> Location:
    """A table of the rows ``ids`` of the finished table ``source``, without copying an image.

    The view lists the source's parts as they are now (a pool only ever adds parts), so it stays
    readable while its source grows; every id must be in the source."""
    location, source = Location(final), Location(source)
    reopen(location)  # a stale view of the same draw is replaced (a view holds no images)
    names = _listed_parts(source)
    held = read_parts(source, names, columns=["id", "y", "b", "split"])
    rows = held.filter(pc.is_in(held["id"], pa.array(ids, pa.string())))
    if rows.num_rows != len(set(ids)):
        raise DataError(f"table {source} holds {rows.num_rows} of the {len(set(ids))} rows a view of it needs")
    info.num_rows = rows.num_rows
    info.group_counts = count_groups(rows)
    put_bytes(location / VIEW_ROWS, serialize(pa.table({"id": rows["id"]}).sort_by("id")))
    meta = {**asdict(info), "parts": names, "view_of": str(source), "rows": VIEW_ROWS}
    write_marker(location / METADATA_FILE, meta)
    return location


def is_current_view(path: str | os.PathLike, source: str | os.PathLike) -> bool:
    """Whether ``path`` is a finished view of ``source`` whose listed parts are all still there
    (a pool removed and made again, or moved, leaves its old views stale: they are rewritten)."""
    if not is_complete(path):
        return False
    meta = _metadata(path)
    if meta.get("view_of") != str(Location(source)):
        return False
    fs, _ = Location(source).filesystem()
    paths = [path_in(Location(source), n) for n in meta["parts"]]
    return all(i.type == pafs.FileType.File for i in fs.get_file_info(paths))


def serialize(rows: pa.Table) -> pa.Buffer:
    """One Parquet file in memory: complete before any byte of it is stored."""
    sink = pa.BufferOutputStream()
    # Row groups of ROW_GROUP_ROWS: a reader that streams the table holds one at a time.
    pq.write_table(rows, sink, row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue()


def to_contract(table: pa.Table) -> pa.Table:
    """The contract's columns in its order; missing provenance (real rows) becomes nulls."""
    for name in PROVENANCE:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def write_table(final: str | os.PathLike, table: pa.Table, info: TableInfo) -> Location:
    """Write a whole in-memory table (one part, then ``table.json``); debris of an unfinished write is cleared first."""
    location = Location(final)
    check_writable(location.parent)
    if is_complete(location):
        raise DataError(f"table {location} already exists")
    table = to_contract(table)
    info.num_rows = table.num_rows
    info.group_counts = count_groups(table)
    clear_debris(location)
    put_bytes(location / f"{PART_PREFIX}00000{PART_SUFFIX}", serialize(table))
    return finalize(location, info)


def write_part(folder: str | os.PathLike, rows: pa.Table) -> Location:
    """One Parquet part, named by its ids, written whole or not at all."""
    ids = rows.column("id").to_pylist()
    name = identity.key("\n".join(sorted(ids)), length=20)
    return put_bytes(Location(folder) / f"{PART_PREFIX}{name}{PART_SUFFIX}", serialize(rows))


def is_complete(path: str | os.PathLike) -> bool:
    return is_file(Location(path) / METADATA_FILE)


def _metadata(path: str | os.PathLike) -> dict:
    meta = read_marker(Location(path) / METADATA_FILE)
    if meta is None:
        raise DataError(f"table {path} is missing or incomplete (no {METADATA_FILE})")
    return meta


def read_info(path: str | os.PathLike) -> TableInfo:
    known = {f.name for f in fields(TableInfo)}
    return TableInfo(**{k: v for k, v in _metadata(path).items() if k in known})


def _parts_dataset(folder: str | os.PathLike, names: list[str]) -> pads.Dataset:
    location = Location(folder)
    fs, _ = location.filesystem()
    paths = [path_in(location, n) for n in names]
    missing = [n for n, i in zip(names, fs.get_file_info(paths)) if i.type != pafs.FileType.File]
    if missing:
        raise DataError(f"table {folder}: part {missing[0]} is missing ({len(missing)} missing in all)")
    return pads.dataset(paths, filesystem=fs, format="parquet")


def _row_filter(split: str | None, ids: pa.Array | None) -> pads.Expression | None:
    conditions = ([pads.field("split") == split] if split is not None else []) + ([pads.field("id").isin(ids)] if ids is not None else [])
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else conditions[0] & conditions[1]


def read_parts(
    folder: str | os.PathLike, names: list[str], split: str | None = None, columns: list[str] | None = None, ids: pa.Array | None = None
) -> pa.Table:
    """The rows of the named parts of ``folder`` (read in parallel), optionally one split, optionally only ``ids``."""
    return _parts_dataset(folder, names).to_table(columns=columns, filter=_row_filter(split, ids))


def _listed_parts(path: str | os.PathLike) -> list[str]:
    meta = _metadata(path)
    # Tables written before table.json listed its parts: every part in the folder.
    names = meta["parts"] if "parts" in meta else part_names(path)
    if not names:
        raise DataError(f"table {path} has no Parquet parts")
    return names


def _layout(path: str | os.PathLike) -> tuple[Location, list[str], pa.Array | None]:
    """Where a finished table's rows are: (folder of its parts, part names, the ids of a view or None)."""
    meta = _metadata(path)
    if "view_of" not in meta:
        return Location(path), _listed_parts(path), None
    ids = pq.read_table(pa.BufferReader(get_bytes(Location(path) / meta["rows"]))).column("id")
    return Location(meta["view_of"]), meta["parts"], ids.combine_chunks()


def read_table(path: str | os.PathLike, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read a finished table (or view), optionally one split, in a stable row order (by id)."""
    folder, names, ids = _layout(path)
    table = read_parts(folder, names, split, columns, ids)
    # Sort by id: the row order must not depend on how a writer partitioned the parts.
    return table.sort_by("id") if "id" in table.column_names else table


def schema_problem(path: str | os.PathLike) -> str | None:
    """How a finished table's parts break the contract's columns (``SCHEMA``), or None: from each
    part's Parquet footer, no row read. A table made elsewhere may hold ``b`` as text, which
    would otherwise pass every check and fail only in the training workers."""
    folder, names, _ = _layout(path)
    fs, _ = folder.filesystem()
    for name in names:
        schema = pq.read_schema(path_in(folder, name), filesystem=fs)
        for column in CORE_COLUMNS:
            if column not in schema.names:
                return f"part {name} has no column '{column}' (a table has {', '.join(CORE_COLUMNS)})"
        for found in schema:
            if found.name in SCHEMA.names and found.type != SCHEMA.field(found.name).type:
                return f"column '{found.name}' is {found.type}, not {SCHEMA.field(found.name).type} (part {name})"
    return None


def iter_batches(path: str | os.PathLike, split: str, columns: list[str], batch_rows: int = 1024):
    """The rows of one split as record batches, in storage order (not sorted by id), without
    holding the whole table: for splits larger than memory."""
    folder, names, ids = _layout(path)
    # One row group of one part at a time (pyarrow reads ahead 4 parts and 16 batches by default).
    yield from _parts_dataset(folder, names).to_batches(
        columns=columns, filter=_row_filter(split, ids), batch_size=batch_rows, batch_readahead=1, fragment_readahead=1
    )
