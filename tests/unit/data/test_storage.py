"""Locations: local paths and URIs, joined and compared the same way; whole-or-absent writes."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from fake2real.data import storage
from fake2real.data.storage import Location, get_bytes, list_names, put_bytes, upload
from fake2real.errors import DataError


@pytest.fixture
def memory():
    """``mem://…`` resolves to one in-memory filesystem for the test."""
    storage.register_filesystem("mem", pafs._MockFileSystem())
    yield "mem://bucket"
    storage.register_filesystem("mem", None)


def test_local_location_is_absolute_and_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    here = Location("outputs")
    assert str(here) == str(tmp_path / "outputs") and here.is_local
    assert Path(here / "data") == tmp_path / "outputs" / "data"
    assert here == tmp_path / "outputs" and here == "outputs"
    assert os.fspath(here.parent) == str(tmp_path)
    assert Location(f"file://{tmp_path}/x") == tmp_path / "x"


def test_uri_location_joins_and_stays_a_clean_uri():
    run = Location("S3://bucket/run/")
    assert str(run) == "s3://bucket/run" and not run.is_local
    assert str(run / "data" / "real-x") == "s3://bucket/run/data/real-x"
    assert str(run / "a/b") == "s3://bucket/run/a/b"
    assert (run / "data").name == "data" and run.parent == "s3://bucket"
    assert Location("gs://b/k") != Location("s3://b/k")
    assert pickle.loads(pickle.dumps(run / "x")) == run / "x"
    with pytest.raises(TypeError, match="s3://bucket/run is not a local path"):
        Path(run)


def test_query_strings_are_refused_in_one_line():
    with pytest.raises(DataError, match="AWS_ENDPOINT_URL") as excinfo:
        Location("s3://bucket/run?endpoint_override=localhost:9000")
    assert "\n" not in str(excinfo.value)


def test_unknown_scheme_is_one_line_naming_it():
    with pytest.raises(DataError, match="nope://x/y: cannot open") as excinfo:
        Location("nope://x/y").filesystem()
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("where", ["local", "memory"])
def test_put_get_list_upload(where, tmp_path, request):
    root = Location(tmp_path / "root") if where == "local" else Location(request.getfixturevalue("memory")) / "root"
    put_bytes(root / "b.bin", b"2")
    put_bytes(root / "a.bin", b"1")
    put_bytes(root / "a.bin", b"11")  # replaces
    (tmp_path / "up.txt").write_text("up")
    upload(tmp_path / "up.txt", root / "sub" / "up.txt")
    assert list_names(root) == ["a.bin", "b.bin"]
    assert list_names(root, suffix=".bin", prefix="b") == ["b.bin"]
    assert get_bytes(root / "a.bin") == b"11" and get_bytes(root / "sub" / "up.txt") == b"up"
    assert list_names(root / "absent") == []


def test_local_put_is_whole_or_absent(tmp_path, monkeypatch):
    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        put_bytes(tmp_path / "part.parquet", b"data")
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_a_uri_mangled_by_pathlib_is_refused_not_written_locally():
    with pytest.raises(DataError, match="s3:/bucket/run: a URI that went through pathlib.Path"):
        Location(Path("s3://bucket/run"))
