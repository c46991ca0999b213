"""Synthetic images made elsewhere (``generation.backend: folder``), imported as a pool table.

The folder (local or a URI) holds the images and one metadata file (CSV or Parquet; default
``metadata.csv``, else ``metadata.parquet``): ``path`` (relative to the folder), ``class``,
``bias``, and optionally ``prompt``, ``seed``, ``model``, ``split`` (train, or test for the held-out
synthetic test pool). Labels are the real table's class and
bias names or integer indices into them. Rows keep the metadata's order within each (y, b)
group: row i of a group is the pool's i-th draw of it (``table.pool_row_id``).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fake2real.data.images import store_image
from fake2real.data.ingest import write_on_ray
from fake2real.data.metadata import Metadata, check_present, metadata_digest, read_metadata, relative_paths, resolve_labels
from fake2real.data.sources import stamps
from fake2real.data.storage import filesystem
from fake2real.data.table import SYNTHETIC, TableInfo, pool_row_id
from fake2real.errors import DataError

__all__ = ["build_imported_table", "list_imported", "metadata_digest", "store_batch"]

COLUMNS = ("path", "class", "bias")
# Set by list_imported on its rows' schema, read back by build_imported_table.
SOURCE_KEY, DIGEST_KEY = b"fake2real.source", b"fake2real.metadata_digest"


def _seeds(meta: Metadata) -> pa.Array:
    if "seed" not in meta.table.column_names:
        return pa.nulls(meta.table.num_rows, pa.int64())
    try:
        return pc.cast(meta.table["seed"], pa.int64()).combine_chunks()
    except pa.ArrowException as exc:  # its message names the value, not the row: find the row
        values = meta.column("seed")
        row = next((i for i, v in enumerate(values) if v is not None and not str(v).lstrip("-").isdigit()), None)
        if row is None:
            raise DataError(f"{meta.name}: column 'seed' must hold integers ({str(exc).splitlines()[0][:120]})") from None
        raise DataError(f"{meta.name}: {meta.where(row)}: seed must be an integer, got '{values[row]}'") from None


def _text(meta: Metadata, column: str, default: str | None) -> pa.Array:
    if column not in meta.table.column_names:
        return pa.array([default] * meta.table.num_rows, pa.string())
    values = meta.table[column].combine_chunks()
    return pc.fill_null(values, default) if default is not None else values


SPLITS = ("train", "test")


def _splits(meta: Metadata) -> list[str]:
    """The optional ``split`` column: train (the pool mixtures draw from) or test (the held-out
    synthetic test pool); absent or empty: train."""
    if "split" not in meta.table.column_names:
        return ["train"] * meta.table.num_rows
    values = [v or "train" for v in meta.column("split")]
    for row, value in enumerate(values):
        if value not in SPLITS:
            raise DataError(f"{meta.name}: {meta.where(row)}: split must be train or test, got '{value}'")
    return values


def list_imported(root: str, metadata: str | None, class_names: list[str], bias_names: list[str], split: str | None = None) -> pa.Table:
    """The images listed by the metadata under ``root``: columns path (absolute path or URI), y, b,
    split, prompt, seed, generator (the ``model`` column, else ``folder:<root>``), sorted by (y, b)
    with the metadata's order kept within each group; ``split``: that split's rows only."""
    meta = read_metadata(root, metadata, COLUMNS, "an imported synthetic folder")
    splits = _splits(meta)
    y, _ = resolve_labels(meta, "class", class_names)
    b, _ = resolve_labels(meta, "bias", bias_names)
    relative = relative_paths(meta)
    fs, base = filesystem(root)
    paths = [f"{base}/{path}" for path in relative]
    check_present(fs, paths, [f"{str(root).rstrip('/')}/{path}" for path in relative])
    # URIs keep their scheme: the rows alone say where each image is, on any node.
    scheme = str(root).split("://", 1)[0] if "://" in str(root) and not str(root).startswith("file://") else None
    rows = pa.table({
        "path": [f"{scheme}://{path}" for path in paths] if scheme else paths,
        "y": y, "b": b, "split": pa.array(splits, pa.string()),
        "prompt": _text(meta, "prompt", None),
        "seed": _seeds(meta),
        "generator": _text(meta, "model", f"folder:{root}"),
    })
    if split is not None:
        rows = rows.filter(pc.equal(rows["split"], split))
    # sort_by is stable: within a group, the metadata's order.
    rows = rows.sort_by([("y", "ascending"), ("b", "ascending")])
    return rows.replace_schema_metadata({SOURCE_KEY: str(root).encode(), DIGEST_KEY: meta.digest.encode()})


def _read(uris: list[str]) -> list[bytes]:
    """The files' bytes, through one filesystem (the rows of one pool share their root)."""
    fs, first = filesystem(uris[0])
    prefix = uris[0][: len(uris[0]) - len(first)]  # "s3://" for a URI, "" for a local path
    out = []
    for uri in uris:
        with fs.open_input_stream(uri[len(prefix):]) as stream:
            out.append(stream.read())
    return out


def store_batch(batch: pa.Table, size: int | None, quality: int) -> pa.Table:
    """One batch's ``path`` → ``image`` (``images.store_image``): the Ray Data task's function."""
    paths = batch["path"].to_pylist()
    images = [store_image(data, size, quality, path) for data, path in zip(_read(paths), paths)] if paths else []
    return batch.drop_columns(["path"]).append_column("image", pa.array(images, pa.binary()))


def _group_indices(y: np.ndarray, b: np.ndarray) -> list[int]:
    """0, 1, … within each (y, b) group, in row order."""
    seen: dict[tuple[int, int], int] = {}
    out = []
    for key in zip(y.tolist(), b.tolist()):
        out.append(seen.get(key, 0))
        seen[key] = out[-1] + 1
    return out


def contract_rows(rows: pa.Table, pool_id: str) -> pa.Table:
    """``list_imported``'s rows with the pool's ids and the synthetic rows' columns (not the image)."""
    y, b = rows["y"].to_numpy(), rows["b"].to_numpy()
    n = rows.num_rows
    ids = [pool_row_id(pool_id, yy, bb, i) for yy, bb, i in zip(y.tolist(), b.tolist(), _group_indices(y, b))]
    return rows.append_column("id", pa.array(ids, pa.string())).append_column(
        "g", pa.array([SYNTHETIC] * n, pa.int64())
    ).append_column("rejections", pa.array([0] * n, pa.int64()))


def build_imported_table(rows: pa.Table, pool_id: str, size: int | None, path: str | os.PathLike, info: TableInfo, quality: int = 95) -> TableInfo:
    """The pool table at ``path`` from ``list_imported``'s rows: images stored as they are when
    already ``size``² JPEG/PNG (always when ``size`` is None), else resized to JPEG at ``quality``;
    decoded on Ray Data (a corrupt image is fatal and named)."""
    meta = rows.schema.metadata or {}
    if SOURCE_KEY not in meta:
        raise DataError("build_imported_table: rows must come from list_imported (they name their source folder)")
    root = meta[SOURCE_KEY].decode()
    info.extra = {**info.extra, "pool_id": pool_id, "source": root, "metadata_digest": meta[DIGEST_KEY].decode()}
    # The pool's id covers the metadata, not the pixels: each image's size and modification time,
    # taken before it is read, let the next run find one edited since (data/sources.py).
    fs, base = filesystem(root)
    relative = [path.split("://", 1)[-1][len(base) + 1:] for path in rows["path"].to_pylist()]
    return write_on_ray(contract_rows(rows, pool_id), path, store_batch, {"size": size, "quality": quality}, info,
                        stamps(fs, base, relative))
