"""``dataset.table``: a finished real table used as it is, its config rules and its checks."""

from __future__ import annotations

import pyarrow as pa
import pytest

import native_fixtures as fixtures
from fake2real.config import build_config
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, write_table
from fake2real.errors import ConfigError, DataError
from fake2real.prepare.workspace import Workspace, planned_real_info, prepare_real

GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]


def write(path, splits=("train", "val", "test"), source="real", dataset="folder", skip=None):
    rows = [
        {"id": f"{split}-{y}{b}", "image": fixtures.image(i, 8, "PNG"), "y": y, "b": b, "g": 0, "split": split}
        for i, (split, (y, b)) in enumerate((s, g) for s in splits for g in GROUPS) if (split, (y, b)) != skip
    ]
    write_table(path, pa.Table.from_pylist(rows), TableInfo(dataset, ["cat", "dog"], ["indoor", "outdoor"], source))
    return path


@pytest.fixture
def config(make_config):
    """``config(table, **dataset)``: a config that reads the finished table ``table``, under the test's tmp_path."""
    return lambda table, **dataset: make_config(dataset={"name": "folder", "table": str(table), "bias_ratio": None, **dataset})


def test_a_finished_table_is_used_as_it_is(tmp_path, config):
    table = write(tmp_path / "mine")
    built = config(table)
    assert prepare_real(built, Workspace.create(built)) == Location(table)
    assert not (tmp_path / "out" / "data").exists()  # nothing built


@pytest.mark.parametrize(("table", "message"), [
    (lambda p: p / "absent", "dataset.table: {p}/absent is missing or incomplete (no table.json)"),
    (lambda p: write(p / "synth", source="synthetic"), "dataset.table: {p}/synth holds a synthetic table, not a real one"),
    (lambda p: write(p / "noval", splits=("train", "test")), "dataset.table: {p}/noval has no 'val' rows (a real table needs train, val and test)"),
    (lambda p: write(p / "celeba", dataset="celeba"), "dataset.table: {p}/celeba holds dataset 'celeba', not 'folder' (set dataset.name: celeba)"),
    (lambda p: write(p / "hole", skip=("test", (1, 1))), "dataset.table {p}/hole test split: group y1_b1 is empty (y0_b0=1, y0_b1=1, y1_b0=1)"),
])
def test_a_bad_table_fails_in_one_line(tmp_path, config, table, message):
    built = config(table(tmp_path))
    with pytest.raises(DataError) as info:
        prepare_real(built, Workspace.create(built))
    assert str(info.value) == message.format(p=tmp_path)


def rewrite_part(table, change):
    """The table's one part, rewritten by ``change`` (a table made elsewhere, not by write_table)."""
    import pyarrow.parquet as pq

    part = table / "part-00000.parquet"
    pq.write_table(change(pq.read_table(part)), part)
    return table


def as_text(rows, column):
    return rows.set_column(rows.column_names.index(column), column, rows[column].cast(pa.string()))


@pytest.mark.parametrize(("change", "message"), [
    (lambda rows: as_text(rows, "b"), "column 'b' is string, not int64 (part part-00000.parquet)"),
    (lambda rows: rows.drop_columns(["g"]), "part part-00000.parquet has no column 'g' (a table has id, image, y, b, g, split)"),
    (lambda rows: rows.drop_columns(["image"]), "part part-00000.parquet has no column 'image' (a table has id, image, y, b, g, split)"),
    (lambda rows: as_text(rows, "seed"), "column 'seed' is string, not int64 (part part-00000.parquet)"),
])
def test_a_table_whose_columns_break_the_contract_is_refused_when_accepted(tmp_path, config, change, message):
    table = rewrite_part(write(tmp_path / "mine"), change)
    built = config(table)
    for accept in (lambda: prepare_real(built, Workspace.create(built)), lambda: planned_real_info(built)):  # the run, the dry run
        with pytest.raises(DataError) as info:
            accept()
        assert str(info.value) == f"dataset.table: {table}: {message}"


def test_a_real_table_without_provenance_columns_is_accepted(tmp_path, config):
    table = rewrite_part(write(tmp_path / "mine"), lambda rows: rows.select(["id", "image", "y", "b", "g", "split"]))
    built = config(table)
    assert prepare_real(built, Workspace.create(built)) == Location(table)


def test_an_unfinished_table_is_not_used(tmp_path, config):
    table = write(tmp_path / "mine")
    (table / "table.json").unlink()
    built = config(table)
    with pytest.raises(DataError, match=r"is missing or incomplete \(no table\.json\)$"):
        prepare_real(built, Workspace.create(built))


@pytest.mark.parametrize(("dataset", "message"), [
    ({"name": "folder", "table": "/t", "root": "/r", "bias_ratio": None},
     "config: dataset.root: a finished table (dataset.table) is used as it is; unset dataset.root"),
    ({"name": "folder", "table": "/t"}, "config: dataset.bias_ratio: a finished table (dataset.table) is used as it is; set it to null"),
    ({"name": "celeba", "table": "/t", "bias_ratio": 0.9}, "config: dataset.bias_ratio: a finished table (dataset.table) is used as it is; set it to null"),
])
def test_config_rules(dataset, message):
    with pytest.raises(ConfigError) as info:
        build_config(overrides={"dataset": dataset})
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["shapes", "celeba", "folder"])
def test_a_table_needs_no_root_and_no_ratio(name):
    # Neither "dataset.root is required" nor "bias_ratio is required for shapes" applies.
    assert build_config(overrides={"dataset": {"name": name, "table": "s3://bucket/t", "bias_ratio": None}}).dataset.table == "s3://bucket/t"
