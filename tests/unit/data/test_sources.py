"""A table made from the user's own files (an imported synthetic pool, the ``folder`` dataset's
real table) records each file's size and modification time: an image edited in place since,
its metadata untouched (so the table's name is the same), is refused on the next run instead of
silently reused. Without Ray (``write_on_ray`` → ``helpers.write_locally``)."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

import native_fixtures as fixtures
from helpers import write_locally
from fake2real.prepare import pool_sources
from fake2real.data import imported, ingest
from fake2real.data.sources import DIGEST_KEY, SOURCES_FILE, changed_source, digest
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, finalize, read_info, read_table, to_contract, write_part
from fake2real.errors import DataError
from fake2real.prepare.pools import ensure_pool, prepare_synthetic
from fake2real.prepare.synthetic import synthetic_draw
from fake2real.prepare.workspace import Workspace, prepare_real

SECOND = 10**9


@pytest.fixture
def setup(make_config, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "write_on_ray", write_locally)
    monkeypatch.setattr(imported, "write_on_ray", write_locally)
    monkeypatch.setattr(pool_sources, "init_ray", lambda: None)
    real = fixtures.folder(tmp_path / "pets")
    synthetic = fixtures.synthetic_folder(tmp_path / "generated", per_group=7)
    config = make_config(
        "dataset.name=folder", f"dataset.root={real}", "dataset.bias_ratio=null",
        "dataset.image_size=16", "generation.backend=folder", f"generation.folder.root={synthetic}",
        "generation.test_images_per_group=0", "train.mixture=ffr",
    )
    return config, Workspace(Location(str(tmp_path / "out"))), real, synthetic


def edit(path, how: str) -> None:
    """``path``'s file changed as a user might: pixels edited in place (same size, a later
    modification time), replaced by a copy that kept the old time (another size), or removed."""
    stat = path.stat()
    if how == "pixels":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + SECOND))
    elif how == "copy":
        path.write_bytes(fixtures.image(99, 24, "PNG"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    else:
        path.unlink()


WHAT = {"pixels": "changed since the {} (size or modification time)", "copy": "changed since the {} (size or modification time)",
        "removed": "was removed since the {}"}


@pytest.mark.parametrize("how", ["pixels", "copy", "removed"])
def test_an_imported_image_changed_since_the_pool_was_imported_is_refused(setup, how):
    config, workspace, _, synthetic = setup
    prepare_real(config, workspace)
    prepare_synthetic(config, workspace)  # imports the pool
    pool = synthetic_draw(config, workspace).pool
    recorded = pq.read_table(str(Location(pool.location) / SOURCES_FILE))
    assert read_info(pool.location).extra[DIGEST_KEY] == digest(recorded) and recorded.num_rows == 28

    image = synthetic / "gen/dog_outdoor_2.png"
    original, stat = image.read_bytes(), image.stat()
    edit(image, how)
    with pytest.raises(DataError) as error:
        prepare_synthetic(config, workspace)
    assert str(error.value) == (f"generation.folder: {synthetic}: image gen/dog_outdoor_2.png {WHAT[how].format('pool was imported')}; "
                                f"remove {pool.location} or restore the image")
    with pytest.raises(DataError, match="gen/dog_outdoor_2.png"):  # the pool's own import step refuses it too
        ensure_pool(config, pool, {(0, 0): 1})

    image.write_bytes(original)  # restored: reused as it is
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    prepare_synthetic(config, workspace)


@pytest.mark.parametrize("how", ["pixels", "copy", "removed"])
def test_a_folder_datasets_image_changed_since_its_table_was_written_is_refused(setup, how):
    config, workspace, real, _ = setup
    table = prepare_real(config, workspace)
    assert read_info(table).extra[DIGEST_KEY] == digest(pq.read_table(str(table / SOURCES_FILE)))
    image = real / "images/cat/000.png"
    edit(image, how)
    with pytest.raises(DataError) as error:
        prepare_real(config, workspace)
    assert str(error.value) == (f"dataset.root: {real}: image images/cat/000.png {WHAT[how].format('real table was written')}; "
                                f"remove {table} or restore the image")


def test_unchanged_files_and_tables_that_recorded_none_are_reused(setup, tmp_path):
    config, workspace, real, _ = setup
    table = prepare_real(config, workspace)
    assert prepare_real(config, workspace) == table
    (real / "unlisted.png").write_bytes(fixtures.image(5))  # not in the table: no matter
    assert changed_source(table, str(real)) is None
    # A table written before tables recorded their files (or of a dataset that records none): nothing to compare.
    older = tmp_path / "older"
    rows = read_table(table)
    write_part(older, to_contract(rows))
    finalize(older, TableInfo("folder", ["cat", "dog"], ["indoor", "outdoor"], "real", num_rows=rows.num_rows))
    assert changed_source(older, str(real)) is None


def test_a_recorded_table_without_its_sources_file_is_refused(setup):
    config, workspace, real, _ = setup
    table = prepare_real(config, workspace)
    os.remove(table / SOURCES_FILE)
    edit(real / "images/cat/000.png", "pixels")
    with pytest.raises(DataError) as error:
        prepare_real(config, workspace)
    assert str(error.value) == f"table {table}: its {SOURCES_FILE} is missing or not the one its table.json records; remove the folder"
