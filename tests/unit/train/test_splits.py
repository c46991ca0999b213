"""Reading a split into memory and streaming it give the same samples in the same order; batches
come in the caller's order whoever fetches them; bad images fail with one line naming them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from fake2real.data.images import encode_image
from fake2real.data.table import TableInfo, to_contract, write_part, finalize, count_groups
from fake2real.errors import DataError
from fake2real.train.batches import BatchLoader
from fake2real.train.splits import concat, decoded_bytes, read_split

SIZE = 8


def _table(folder, rows: list[tuple], parts: int = 3, source: int = 0):
    """A table of ``rows`` (id, pixels or raw bytes, y, b, split) written in ``parts`` parts, out of id order."""
    table = to_contract(
        pa.table(
            {
                "id": [r[0] for r in rows],
                "image": pa.array([r[1] if isinstance(r[1], bytes) else encode_image(r[1]) for r in rows], pa.binary()),
                "y": [r[2] for r in rows],
                "b": [r[3] for r in rows],
                "g": [source] * len(rows),
                "split": [r[4] for r in rows],
            }
        )
    )
    for k in range(parts):
        write_part(folder, table.take(list(range(k, len(rows), parts))))
    info = TableInfo("toy", ["a", "b"], ["p", "q"], source="real", num_rows=len(rows), group_counts=count_groups(table))
    finalize(folder, info)
    return str(folder)


def _pixels(seed: int, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _rows(n: int = 23) -> list[tuple]:
    # ids deliberately not in storage order; one (y1, b0) sample only
    rows = [(f"id-{(7 * i) % n:03d}", _pixels(i), i % 2, 0 if i % 2 == 0 else 1, "train") for i in range(n)]
    rows.append(("id-lonely", _pixels(99), 1, 0, "train"))
    return rows


def test_memory_and_stream_read_the_same_samples_in_id_order(tmp_path):
    table = _table(tmp_path / "t", _rows())
    memory = read_split(table, "train", 2)
    streamed = read_split(table, "train", 2, stream_dir=str(tmp_path))
    assert streamed.streamed and not memory.streamed
    everything = torch.arange(len(memory))
    assert torch.equal(memory.fetch(everything), streamed.fetch(everything))
    for field in ("labels", "groups", "sources"):
        assert torch.equal(getattr(memory, field), getattr(streamed, field))
    # Sorted by id: sample k is the k-th id in sorted order, whatever the parts' order.
    rows = sorted(_rows(), key=lambda r: r[0])
    assert memory.labels.tolist() == [r[2] for r in rows]
    expected = torch.stack([torch.from_numpy(r[1]).permute(2, 0, 1) for r in rows])
    assert torch.equal(memory.fetch(everything), expected)  # PNG: lossless
    assert decoded_bytes(table, "train") == len(rows) * 3 * SIZE * SIZE


def test_mixed_tables_fetch_across_stores(tmp_path):
    real = read_split(_table(tmp_path / "real", _rows(5)), "train", 2)
    synthetic_rows = [(f"s-{i}", _pixels(100 + i), 0, 1, "train") for i in range(4)]
    synthetic = read_split(_table(tmp_path / "syn", synthetic_rows, parts=2, source=1), "train", 2, stream_dir=str(tmp_path))
    mixed = concat([real, synthetic])
    assert len(mixed) == 10 and mixed.streamed
    index = torch.tensor([9, 0, 6, 3, 6])
    parts = [real.fetch(torch.tensor([i])) if i < 6 else synthetic.fetch(torch.tensor([i - 6])) for i in index.tolist()]
    assert torch.equal(mixed.fetch(index), torch.cat(parts))
    assert mixed.source_groups(4)[index].tolist() == [5, 0 + real.groups[0].item(), 5, real.groups[3].item(), 5]


@pytest.mark.parametrize("workers,prefetch", [(0, 0), (0, 2), (2, 2)])
def test_batches_come_in_the_callers_order(tmp_path, workers, prefetch):
    train_table, val_table = _table(tmp_path / "t", _rows()), _table(tmp_path / "v", _rows(11))
    splits = {"train": read_split(train_table, "train", 2, stream_dir=str(tmp_path)), "val": read_split(val_table, "train", 2, stream_dir=str(tmp_path))}
    reference = {"train": read_split(train_table, "train", 2), "val": read_split(val_table, "train", 2)}
    loader = BatchLoader(splits, torch.device("cpu"), workers=workers, prefetch=prefetch)
    generator = torch.Generator().manual_seed(0)
    # Persistent loader processes serve pass after pass: each pass has its own split and order.
    for name in ("train", "val", "train", "val"):
        order = torch.randperm(len(splits[name]), generator=generator)
        got = list(loader.batches(name, order, 5))
        assert [len(index) for _, index in got] == [len(c) for c in order.split(5)]
        assert torch.equal(torch.cat([index for _, index in got]), order)
        assert torch.equal(torch.cat([images for images, _ in got]), reference[name].fetch(order))


def test_corrupt_image_is_one_line_naming_it(tmp_path):
    rows = _rows(4) + [("id-bad", b"not an image", 0, 0, "train"), ("id-empty", b"", 0, 0, "train")]
    table = _table(tmp_path / "t", rows)
    for stream_dir in (None, str(tmp_path)):  # streamed splits are checked while they are copied
        with pytest.raises(DataError, match=r"image id-(bad|empty) cannot be decoded") as error:
            read_split(table, "train", 2, stream_dir=stream_dir)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("workers", [0, 1])
def test_image_that_fails_in_a_loader_process_is_one_line(tmp_path, workers):
    good = read_split(_table(tmp_path / "t", _rows(4)), "train", 2, stream_dir=str(tmp_path))
    # The streamed copy damaged after it was checked (e.g. a disk error): fetched, it must fail cleanly.
    path = tmp_path / "damaged.arrow"
    with pa.ipc.new_file(str(path), pa.schema([("id", pa.string()), ("image", pa.binary())])) as writer:
        writer.write_batch(pa.record_batch([pa.array(["id-x"] * len(good)), pa.array([b"garbage"] * len(good), pa.binary())], names=["id", "image"]))
    good.store.path = str(path)
    loader = BatchLoader({"train": good}, torch.device("cpu"), workers=workers, prefetch=1)
    with pytest.raises(DataError, match=r"image id-x cannot be decoded") as error:
        list(loader.batches("train", torch.arange(len(good)), 2))
    assert "\n" not in str(error.value)


def test_streamed_fetch_reads_only_the_batches_it_needs(tmp_path):
    # Several record batches in the copy (one per 1,024 rows read): a fetch must not concatenate
    # the whole image column (Arrow's take on a chunked binary column does).
    rows = [(f"id-{i:05d}", _pixels(i % 7), i % 2, 0, "train") for i in range(2500)]
    streamed = read_split(_table(tmp_path / "t", rows, parts=1), "train", 2, stream_dir=str(tmp_path))
    file_size = next(tmp_path.glob("train-*.arrow")).stat().st_size
    before = pa.total_allocated_bytes()
    images = streamed.fetch(torch.tensor([2499, 3, 1500]))
    assert pa.total_allocated_bytes() - before < file_size / 4
    memory = read_split(str(tmp_path / "t"), "train", 2)
    assert torch.equal(images, memory.fetch(torch.tensor([2499, 3, 1500])))


def test_images_of_different_sizes_are_refused(tmp_path):
    rows = _rows(4) + [("id-big", _pixels(5, size=SIZE * 2), 0, 0, "train")]
    table = _table(tmp_path / "t", rows)
    for stream_dir in (None, str(tmp_path)):
        with pytest.raises(DataError, match=r"different sizes .*id-big"):
            read_split(table, "train", 2, stream_dir=stream_dir)


def test_missing_split_is_refused(tmp_path):
    table = _table(tmp_path / "t", _rows(4))
    with pytest.raises(DataError, match=r"no 'val' rows"):
        read_split(table, "val", 2)


@pytest.mark.parametrize("stream", [False, True])
def test_split_absent_from_some_parts(tmp_path, stream):
    # Parts are written by position: with 3 parts, every 'val' row below lands in the last part.
    rows = [(f"id-{i}", _pixels(i), i % 2, 0, "val" if i % 3 == 2 else "train") for i in range(9)]
    table = _table(tmp_path / "t", rows)
    val = read_split(table, "val", 2, stream_dir=str(tmp_path) if stream else None)
    assert len(val) == 3 and val.fetch(torch.arange(3)).shape == (3, 3, SIZE, SIZE)
