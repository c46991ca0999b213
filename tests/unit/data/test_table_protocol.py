"""The table protocol, the same on a local disk and an object store (here pyarrow's in-memory one):
parts written in place, each whole; ``table.json`` last, listing them; debris of unfinished writes."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from fake2real.data import storage
from fake2real.data.storage import Location, get_bytes, list_names, put_bytes
from fake2real.data.table import (
    METADATA_FILE,
    TableInfo,
    check_writable,
    clear_debris,
    finalize,
    is_complete,
    part_names,
    read_info,
    read_table,
    to_contract,
    write_part,
    write_table,
)
from fake2real.errors import DataError


@pytest.fixture(params=["local", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield Location(tmp_path)
        return
    storage.register_filesystem("mem", pafs._MockFileSystem())
    yield Location("mem://bucket/run")
    storage.register_filesystem("mem", None)


def rows(n: int, start: int = 0) -> pa.Table:
    ids = [f"id-{i:03d}" for i in range(start, start + n)]
    return to_contract(pa.table({
        "id": ids, "image": pa.array([i.encode() for i in ids], pa.binary()), "y": [i % 2 for i in range(n)],
        "b": [0] * n, "g": [0] * n, "split": ["train" if i % 3 else "val" for i in range(n)],
    }))


def info(n: int = 0) -> TableInfo:
    return TableInfo("toy", ["a", "b"], ["p"], "real", num_rows=n)


def test_roundtrip_and_table_json_lists_the_parts(root):
    table = root / "data" / "toy"
    assert write_table(table, rows(5), info()) == table
    assert is_complete(table) and read_info(table).num_rows == 5
    meta = json.loads(get_bytes(table / METADATA_FILE))
    assert meta["parts"] == ["part-00000.parquet"] == part_names(table)
    assert read_table(table)["id"].to_pylist() == [f"id-{i:03d}" for i in range(5)]
    assert read_table(table, split="val", columns=["id"])["id"].to_pylist() == ["id-000", "id-003"]


def test_a_folder_without_table_json_is_not_a_table(root):
    table = root / "half"
    write_part(table, rows(4))
    assert part_names(table) and not is_complete(table)
    with pytest.raises(DataError, match="incomplete"):
        read_table(table)


def test_non_resumable_writer_clears_debris_first(root):
    table = root / "toy"
    write_part(table, rows(3, start=100))  # an earlier, killed write's part
    put_bytes(table / ".tmp-part-x.parquet-1-abc", b"half")  # and a killed local write's temporary
    write_table(table, rows(5), info())
    assert list_names(table) == ["part-00000.parquet", METADATA_FILE]
    assert read_table(table).num_rows == 5


def test_finished_tables_are_never_replaced_or_cleared(root):
    table = root / "toy"
    write_table(table, rows(5), info())
    with pytest.raises(DataError, match="already exists"):
        write_table(table, rows(1), info())
    with pytest.raises(DataError, match="is complete"):
        clear_debris(table)
    assert read_table(table).num_rows == 5


def test_finalize_checks_the_row_count_and_names_the_folder(root):
    table = root / "toy"
    write_part(table, rows(4))
    with pytest.raises(DataError, match=f"table {table}: its parts hold 4 rows, not 5"):
        finalize(table, info(5))
    assert not is_complete(table)


def test_readers_read_exactly_the_listed_parts(root):
    table = root / "toy"
    write_part(table, rows(4))
    finalize(table, info(4))
    write_part(table, rows(2, start=50))  # written after table.json: not part of the table
    assert read_table(table).num_rows == 4
    storage.delete_file(table / part_names(table)[0])
    with pytest.raises(DataError, match="part part-.*parquet is missing"):
        read_table(table)


def test_row_order_does_not_depend_on_partitioning(root):
    one, many = root / "one", root / "many"
    write_table(one, rows(9), info())
    whole = rows(9)
    for start in (6, 0, 3):
        write_part(many, whole.slice(start, 3))
    finalize(many, info(9))
    assert read_table(many).equals(read_table(one))


def test_parts_are_named_by_their_ids_and_whole(root, monkeypatch):
    table = root / "toy"
    first = write_part(table, rows(3))
    assert write_part(table, rows(3).take([2, 0, 1])) == first  # same ids, same part

    def broken(_rows):
        raise RuntimeError("encoder died")

    monkeypatch.setattr("fake2real.data.table.serialize", broken)
    with pytest.raises(RuntimeError):
        write_part(table, rows(3, start=10))
    assert part_names(table) == [first.name]


def test_check_writable_through_the_filesystem(root):
    target = check_writable(root / "a" / "b")
    assert target == root / "a" / "b"
    assert list_names(target) == []  # the probe is removed


def test_legacy_tables_without_a_part_list_still_read(tmp_path):
    table = tmp_path / "old"
    write_table(table, rows(3), info())
    meta = json.loads((table / METADATA_FILE).read_text())
    del meta["parts"]
    (table / METADATA_FILE).write_text(json.dumps(meta))
    assert read_table(table).num_rows == 3
