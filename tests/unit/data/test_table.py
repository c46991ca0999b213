"""The image-table contract: write_table / read_table / read_info / check_writable."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from fake2real.data.table import (
    METADATA_FILE,
    SCHEMA,
    TableInfo,
    check_writable,
    group_name,
    is_complete,
    read_info,
    read_table,
    write_table,
)
from fake2real.errors import DataError


def _rows():
    # Written deliberately out of id order.
    rows = [
        ("id-3", b"\x03", 1, 1, "train"),
        ("id-1", b"\x01", 0, 0, "train"),
        ("id-5", b"\x05", 0, 1, "val"),
        ("id-2", b"\x02", 0, 0, "train"),
        ("id-4", b"\x04", 1, 0, "test"),
    ]
    n = len(rows)
    return pa.table(
        {
            "id": [r[0] for r in rows],
            "image": pa.array([r[1] for r in rows], pa.binary()),
            "y": [r[2] for r in rows],
            "b": [r[3] for r in rows],
            "g": [0] * n,
            "split": [r[4] for r in rows],
            "prompt": pa.nulls(n, pa.string()),
            "seed": list(range(n)),
            "generator": pa.nulls(n, pa.string()),
            "steps": pa.nulls(n, pa.int64()),
            "guidance": pa.nulls(n, pa.float64()),
            "extra_column": ["dropped"] * n,
        }
    )


def _info():
    return TableInfo("toy", ["a", "b"], ["p", "q"], source="real", extra={"k": 1})


def test_group_name():
    assert group_name(1, 0) == "y1_b0"


def test_write_read_roundtrip(tmp_path):
    final = tmp_path / "tables" / "toy"
    written = write_table(final, _rows(), _info())
    assert written == final
    assert is_complete(final)
    meta = json.loads((final / METADATA_FILE).read_text())
    assert meta["num_rows"] == 5
    expected_counts = {
        "test": {"y1_b0": 1},
        "train": {"y0_b0": 2, "y1_b1": 1},
        "val": {"y0_b1": 1},
    }
    assert meta["group_counts"] == expected_counts

    info = read_info(final)
    assert info.dataset == "toy" and info.source == "real"
    assert info.num_classes == 2 and info.num_biases == 2
    assert info.group_counts == expected_counts
    assert info.extra == {"k": 1}

    table = read_table(final)
    assert table.schema == SCHEMA  # extra column dropped, types cast to the contract
    assert table.column("id").to_pylist() == ["id-1", "id-2", "id-3", "id-4", "id-5"]
    assert table.column("image").to_pylist() == [b"\x01", b"\x02", b"\x03", b"\x04", b"\x05"]

    train = read_table(final, split="train")
    assert train.column("id").to_pylist() == ["id-1", "id-2", "id-3"]
    assert set(train.column("split").to_pylist()) == {"train"}
    val = read_table(final, split="val", columns=["id", "y", "b"])
    assert val.column_names == ["id", "y", "b"]
    assert val.to_pylist() == [{"id": "id-5", "y": 0, "b": 1}]
    assert read_table(final, split="nope").num_rows == 0


def test_write_table_leaves_no_staging_folder(tmp_path):
    write_table(tmp_path / "toy", _rows(), _info())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_write_table_refuses_to_replace(tmp_path):
    final = tmp_path / "toy"
    write_table(final, _rows(), _info())
    with pytest.raises(DataError, match="already exists"):
        write_table(final, _rows().slice(0, 1), _info())
    assert read_info(final).num_rows == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_read_info_on_incomplete_folder(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "part-00000.parquet").write_bytes(b"")
    assert not is_complete(folder)
    with pytest.raises(DataError, match="incomplete"):
        read_info(folder)
    with pytest.raises(DataError, match="incomplete"):
        read_table(folder)


def test_read_info_on_missing_folder(tmp_path):
    with pytest.raises(DataError, match="incomplete"):
        read_info(tmp_path / "absent")


def test_read_table_without_parts(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / METADATA_FILE).write_text(json.dumps({"dataset": "toy", "class_names": [], "bias_names": [], "source": "real"}))
    with pytest.raises(DataError, match="no Parquet parts"):
        read_table(folder)


def test_check_writable_creates_folder(tmp_path):
    target = tmp_path / "a" / "b"
    assert check_writable(target) == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the probe file is removed


def test_check_writable_under_a_regular_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not writable") as excinfo:
        check_writable(blocker / "sub")
    assert str(blocker / "sub") in str(excinfo.value)


def test_write_table_under_a_regular_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(DataError, match="not writable"):
        write_table(blocker / "toy", _rows(), _info())
