"""The image-table contract (DESIGN §4): a folder of Parquet parts plus ``table.json``.

``table.json`` carries the dataset metadata (class and bias names, group counts) and is written
last, by an atomic rename of the whole folder: a folder without it is never a finished table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fake2real.errors import DataError

REAL, SYNTHETIC = 0, 1
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


def count_groups(table: pa.Table) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    grouped = table.group_by(["split", "y", "b"]).aggregate([("id", "count")])
    for row in grouped.to_pylist():
        counts.setdefault(row["split"], {})[group_name(row["y"], row["b"])] = row["id_count"]
    return {split: dict(sorted(groups.items())) for split, groups in sorted(counts.items())}


def check_writable(path: str | Path) -> Path:
    """Create ``path`` (a folder) or fail with one line naming it."""
    path = Path(path).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"output path {path} is not writable: {exc.strerror or exc}") from None
    return path


def staging_dir(final: Path) -> Path:
    """A sibling folder to write into before the atomic rename to ``final``."""
    return final.parent / f".{final.name}.partial-{uuid.uuid4().hex[:8]}"


def finalize(staging: Path, final: Path, info: TableInfo) -> Path:
    """Write ``table.json`` into ``staging`` and rename it to ``final`` (replacing nothing)."""
    (staging / METADATA_FILE).write_text(json.dumps(asdict(info), indent=2, sort_keys=True))
    if final.exists():
        shutil.rmtree(staging)
        raise DataError(f"table {final} already exists")
    os.replace(staging, final)
    return final


def to_contract(table: pa.Table) -> pa.Table:
    """The contract's columns in its order; missing provenance (real rows) becomes nulls."""
    for name in PROVENANCE:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, SCHEMA.field(name).type))
    return table.select(SCHEMA.names).cast(SCHEMA)


def write_table(final: str | Path, table: pa.Table, info: TableInfo) -> Path:
    """Write a whole in-memory table atomically."""
    final = Path(final)
    check_writable(final.parent)
    table = to_contract(table)
    info.num_rows = table.num_rows
    info.group_counts = count_groups(table)
    staging = staging_dir(final)
    staging.mkdir()
    pq.write_table(table, staging / "part-00000.parquet")
    return finalize(staging, final, info)


def write_part(folder: Path, rows: pa.Table) -> Path:
    """One Parquet part, named by its ids, written atomically (whole or absent)."""
    ids = rows.column("id").to_pylist()
    name = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:20]
    temporary = folder / f".tmp-{name}-{os.getpid()}"
    pq.write_table(rows, temporary)
    final = folder / f"part-{name}.parquet"
    os.replace(temporary, final)
    return final


def is_complete(path: str | Path) -> bool:
    return (Path(path) / METADATA_FILE).is_file()


def read_info(path: str | Path) -> TableInfo:
    meta = Path(path) / METADATA_FILE
    if not meta.is_file():
        raise DataError(f"table {path} is missing or incomplete (no {METADATA_FILE})")
    return TableInfo(**json.loads(meta.read_text()))


def read_table(path: str | Path, split: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read a finished table, optionally one split, parts in name order (stable row order)."""
    read_info(path)
    parts = sorted(Path(path).glob("*.parquet"))
    if not parts:
        raise DataError(f"table {path} has no Parquet parts")
    filters = [("split", "=", split)] if split is not None else None
    tables = [pq.read_table(p, columns=columns, filters=filters) for p in parts]
    table = pa.concat_tables(tables)
    # Sort by id: the row order must not depend on how a writer partitioned the parts.
    return table.sort_by("id") if "id" in table.column_names else table
