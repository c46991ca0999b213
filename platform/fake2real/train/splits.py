"""A split of an image table as a training worker reads it.

Labels, groups and sources (a few bytes a sample) are held in memory in the table's stable order
(sorted by id). Images are fetched by sample index from one of two stores:

- ``MemoryImages``: the split decoded once into one uint8 tensor. Fastest; costs N·3·H·W bytes.
- ``StreamImages``: the encoded rows copied once, batch by batch, into a local Arrow IPC file
  that is memory-mapped; a batch is decoded when it is fetched. What stays resident is the
  batches in flight plus the file pages the OS chooses to keep: for splits larger than memory.

Both read the Parquet parts row group by row group, so neither holds the whole encoded table,
and both decode every image once while reading: a corrupt image or a stray size fails the stage
before it trains.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from fake2real.data.groups import group_index
from fake2real.data.images import decode_rgb
from fake2real.data.table import iter_batches, read_info
from fake2real.errors import DataError

COLUMNS = ["id", "image", "y", "b", "g"]


def decode(table: str, image_id: str, data: bytes) -> torch.Tensor:
    try:
        return decode_rgb(data)
    except (RuntimeError, ValueError) as exc:  # ValueError: empty bytes
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"table {table}: image {image_id} cannot be decoded: {reason}") from None


def _check_shape(table: str, split: str, image_id: str, image: torch.Tensor, shape: tuple) -> None:
    if tuple(image.shape) != shape:
        raise DataError(
            f"table {table} '{split}': images have different sizes ({tuple(image.shape)} at {image_id}, {shape} before); resize at ingestion"
        )


class MemoryImages:
    def __init__(self, images: torch.Tensor):
        self.images = images

    def fetch(self, rows: torch.Tensor) -> torch.Tensor:
        return self.images[rows]


class StreamImages:
    """Encoded images in a memory-mapped Arrow IPC file, decoded per fetch (in any process).

    Rows are taken from each record batch of the file separately: a take over the whole
    (chunked) binary column would first concatenate it, copying the entire file into memory.
    """

    def __init__(self, path: str, table: str, split: str, shape: tuple):
        self.path, self.table, self.split, self.shape = path, table, split, shape
        self._reader: pa.ipc.RecordBatchFileReader | None = None
        self._starts: np.ndarray | None = None

    def __getstate__(self) -> dict:  # a loader process maps the file itself
        return {**self.__dict__, "_reader": None, "_starts": None}

    def fetch(self, rows: torch.Tensor) -> torch.Tensor:
        if self._reader is None:
            self._reader = pa.ipc.open_file(pa.memory_map(self.path))
            sizes = [self._reader.get_batch(i).num_rows for i in range(self._reader.num_record_batches)]
            self._starts = np.cumsum([0, *sizes])
        rows = rows.numpy()
        batch_of = np.searchsorted(self._starts, rows, side="right") - 1
        out = torch.empty((len(rows), *self.shape), dtype=torch.uint8)
        for batch in np.unique(batch_of):
            where = np.flatnonzero(batch_of == batch)
            taken = self._reader.get_batch(int(batch)).take(pa.array(rows[where] - self._starts[batch]))
            for i, image_id, data in zip(where, taken.column("id").to_pylist(), taken.column("image").to_pylist()):
                image = decode(self.table, image_id, data)
                _check_shape(self.table, self.split, image_id, image, self.shape)
                out[i] = image
        return out


class ConcatImages:
    """Stores of several tables (a mixed real + synthetic stage) behind one row numbering."""

    def __init__(self, stores: list, sizes: list[int]):
        self.stores = stores
        self.offsets = torch.tensor(np.cumsum([0, *sizes]))

    def fetch(self, rows: torch.Tensor) -> torch.Tensor:
        part = torch.bucketize(rows, self.offsets[1:], right=True)
        pieces = {}
        for k in part.unique().tolist():
            mask = part == k
            pieces[k] = (mask, self.stores[k].fetch(rows[mask] - self.offsets[k]))
        if not pieces:
            return torch.empty((0, *self.stores[0].fetch(rows).shape[1:]), dtype=torch.uint8)
        first = next(iter(pieces.values()))[1]
        out = torch.empty((len(rows), *first.shape[1:]), dtype=torch.uint8)
        for mask, images in pieces.values():
            out[mask] = images
        return out


@dataclass
class Split:
    labels: torch.Tensor  # int64 (N,)
    groups: torch.Tensor  # int64 (N,): (y, b) group index
    sources: torch.Tensor  # int64 (N,): g, 0 real / 1 synthetic
    rows: torch.Tensor  # int64 (N,): where each sample's image is in the store
    store: MemoryImages | StreamImages | ConcatImages
    image_shape: tuple
    streamed: bool

    def __len__(self) -> int:
        return len(self.labels)

    def fetch(self, index: torch.Tensor) -> torch.Tensor:
        """uint8 (len(index), 3, H, W) images of these samples."""
        return self.store.fetch(self.rows[index])

    def source_groups(self, num_groups: int) -> torch.Tensor:
        """(y, b, g) group index: the (y, b) index, offset by ``num_groups`` for synthetic rows."""
        return self.sources * num_groups + self.groups


def split_rows(table: str, split: str) -> int:
    return sum(read_info(table).group_counts.get(split, {}).values())


def decoded_bytes(table: str, split: str) -> int:
    """What ``MemoryImages`` of this split would hold, from its row count and first image."""
    rows = split_rows(table, split)
    for batch in iter_batches(table, split, ["id", "image"]):
        if batch.num_rows:
            return rows * decode(table, batch.column("id")[0].as_py(), batch.column("image")[0].as_py()).numel()
    return 0


def read_split(table: str, split: str, num_biases: int, stream_dir: str | None = None) -> Split:
    """One split of a table; images decoded into memory, or streamed from a file in ``stream_dir``."""
    expected = split_rows(table, split)
    if expected == 0:
        raise DataError(f"table {table} has no '{split}' rows")
    ids: list[str] = []
    labels, biases, sources = [], [], []
    images, shape, writer = None, None, None
    try:
        for batch in iter_batches(table, split, COLUMNS):
            if batch.num_rows == 0:  # a filtered batch of other splits' rows
                continue
            batch_ids = batch.column("id").to_pylist()
            if len(ids) + len(batch_ids) > expected:
                raise DataError(f"table {table} '{split}': more rows than its table.json counts ({expected})")
            if stream_dir is not None and writer is None:
                path = os.path.join(stream_dir, f"{split}-{uuid.uuid4().hex}.arrow")
                writer = pa.ipc.new_file(path, pa.schema([("id", pa.string()), ("image", pa.binary())]))
            # Every image is decoded once here, streamed or not: a corrupt image fails the stage
            # before training starts, not mid-epoch (where a restart would only meet it again).
            for offset, (image_id, data) in enumerate(zip(batch_ids, batch.column("image").to_pylist())):
                image = decode(table, image_id, data)
                shape = shape or tuple(image.shape)
                _check_shape(table, split, image_id, image, shape)
                if stream_dir is None:
                    if images is None:  # one allocation: no list of tensors to stack (2x the memory)
                        images = torch.empty((expected, *shape), dtype=torch.uint8)
                    images[len(ids) + offset] = image
            if writer is not None:
                writer.write_batch(pa.record_batch([batch.column("id"), batch.column("image")], names=["id", "image"]))
            ids += batch_ids
            labels.append(batch.column("y").to_numpy())
            biases.append(batch.column("b").to_numpy())
            sources.append(batch.column("g").to_numpy())
    finally:
        if writer is not None:
            writer.close()
    if len(ids) != expected:
        raise DataError(f"table {table} '{split}': {len(ids)} rows, but its table.json counts {expected}")
    # The table's stable order (by id), whatever order its parts stored the rows in.
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    y, b, g = (np.concatenate(parts)[order] for parts in (labels, biases, sources))
    store = StreamImages(path, table, split, shape) if stream_dir is not None else MemoryImages(images)
    return Split(
        labels=torch.as_tensor(y, dtype=torch.int64),
        groups=torch.as_tensor(group_index(y, b, num_biases), dtype=torch.int64),
        sources=torch.as_tensor(g, dtype=torch.int64),
        rows=torch.as_tensor(order, dtype=torch.int64),
        store=store,
        image_shape=shape,
        streamed=stream_dir is not None,
    )


def concat(parts: list[Split]) -> Split:
    if len(parts) == 1:
        return parts[0]
    shapes = {p.image_shape for p in parts}
    if len(shapes) != 1:
        raise DataError(f"tables to mix have different image sizes {sorted(shapes)}; generate at the real table's size (generation.output_size)")
    sizes = [len(p) for p in parts]
    offsets = np.cumsum([0, *sizes])
    return Split(
        labels=torch.cat([p.labels for p in parts]),
        groups=torch.cat([p.groups for p in parts]),
        sources=torch.cat([p.sources for p in parts]),
        # Each store's rows are the samples' storage positions: number them behind one another.
        rows=torch.cat([p.rows + int(offset) for p, offset in zip(parts, offsets)]),
        store=ConcatImages([p.store for p in parts], sizes),
        image_shape=parts[0].image_shape,
        streamed=any(p.streamed for p in parts),
    )
