"""Synthetic images made elsewhere (``generation.backend: folder``) without Ray: the listing, its
labels and errors, the metadata digest, images stored as they are, and the pool table."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import native_fixtures as fixtures
from helpers import write_locally
from fake2real.data import imported, sources
from fake2real.data.imported import build_imported_table, list_imported, metadata_digest, store_batch
from fake2real.data.table import SYNTHETIC, TableInfo, pool_row_id, read_info, read_table
from fake2real.errors import DataError

CLASSES, BIASES = ["cat", "dog"], ["indoor", "outdoor"]


@pytest.fixture
def root(tmp_path):
    return fixtures.synthetic_folder(tmp_path / "gen", per_group=3)


def test_listing_is_grouped_in_metadata_order(root):
    rows = list_imported(str(root), None, CLASSES, BIASES)
    assert rows.column_names == ["path", "y", "b", "split", "prompt", "seed", "generator"]
    assert list(zip(rows["y"].to_pylist(), rows["b"].to_pylist())) == [(y, b) for y in (0, 1) for b in (0, 1) for _ in range(3)]
    # Within a group, the metadata's order: its i-th row of cat/indoor is cat_indoor_i.
    assert rows["path"].to_pylist()[:3] == [f"{root}/gen/cat_indoor_{i}.png" for i in range(3)]
    assert rows["prompt"][0].as_py() == "a photo of a cat indoor"
    assert rows["seed"].to_pylist()[:3] == [103, 107, 111]  # the fixture's rows come 4 groups at a time, cat/indoor last
    assert set(rows["generator"].to_pylist()) == {"sdxl-turbo"}


def test_labels_by_index_and_without_provenance(tmp_path):
    root = tmp_path / "plain"
    (root / "x").mkdir(parents=True)
    lines = ["path,class,bias"]
    for i, (y, b) in enumerate([(1, 1), (0, 0), (1, 0), (0, 1), (0, 0)]):
        (root / "x" / f"{i}.jpg").write_bytes(fixtures.image(i, 16, "JPEG"))
        lines.append(f"x/{i}.jpg,{y},{BIASES[b] if i % 2 else b}")  # names and indices mixed
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    rows = list_imported(str(root), None, CLASSES, BIASES)
    assert rows["path"].to_pylist() == [f"{root}/x/{i}.jpg" for i in (1, 4, 3, 2, 0)]
    assert rows["prompt"].null_count == rows["seed"].null_count == 5
    assert set(rows["generator"].to_pylist()) == {f"folder:{root}"}


def test_parquet_metadata_by_name(tmp_path):
    root = fixtures.synthetic_folder(tmp_path / "gen", per_group=2, metadata="meta.parquet")
    rows = list_imported(str(root), "meta.parquet", CLASSES, BIASES)
    assert rows.num_rows == 8 and rows["seed"].type == pa.int64()
    with pytest.raises(DataError, match=rf"^missing metadata file {root}/metadata\.csv \(or metadata\.parquet\)$"):
        list_imported(str(root), None, CLASSES, BIASES)


def edit(root, old, new, count=1):
    path = root / "metadata.csv"
    path.write_text(path.read_text().replace(old, new, count))


@pytest.mark.parametrize(("damage", "pattern"), [
    (lambda r: edit(r, '"dog","outdoor"', '"dog","garden"'), r"^{root}/metadata\.csv: line 2: unknown bias 'garden' \(known: indoor, outdoor\)$"),
    (lambda r: edit(r, '"dog","outdoor"', '"2","outdoor"'), r"^{root}/metadata\.csv: line 2: unknown class '2' \(known: cat, dog\)$"),
    (lambda r: edit(r, '"class"', '"label"'), r"^{root}/metadata\.csv: missing column 'class' \("),
    (lambda r: (r / "gen/cat_indoor_1.png").unlink(), r"^listed image '{root}/gen/cat_indoor_1\.png' is missing \(1 missing in all\)$"),
    (lambda r: edit(r, "gen/dog_indoor_0.png", "gen/dog_outdoor_0.png"),
     r"^{root}/metadata\.csv: line 3: path 'gen/dog_outdoor_0\.png' is listed twice \(first at line 2\)$"),
    (lambda r: edit(r, ",100,", ",x1,"), r"^{root}/metadata\.csv: line 2: seed must be an integer, got 'x1'$"),
])
def test_bad_folders_fail_in_one_line(root, damage, pattern):
    damage(root)
    with pytest.raises(DataError, match=pattern.format(root=root)) as info:
        list_imported(str(root), None, CLASSES, BIASES)
    assert "\n" not in str(info.value)


def test_metadata_digest_follows_the_file(root):
    digest = metadata_digest(str(root), None)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert list_imported(str(root), None, CLASSES, BIASES).schema.metadata[imported.DIGEST_KEY].decode() == digest
    edit(root, "a photo", "a picture")
    assert metadata_digest(str(root), None) != digest


def test_store_batch_keeps_matching_images_as_they_are(tmp_path):
    files = {"a.jpg": fixtures.image(1, 16, "JPEG"), "b.png": fixtures.image(2, 16, "PNG"), "c.png": fixtures.image(3, 24, "PNG")}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    batch = pa.table({"path": [str(tmp_path / n) for n in files], "y": [0, 0, 1]})
    out = store_batch(batch, 16, 95)
    assert out.column_names == ["y", "image"]
    images = out["image"].to_pylist()
    assert images[0] == files["a.jpg"] and images[1] == files["b.png"]
    resized = Image.open(io.BytesIO(images[2]))
    assert (resized.format, resized.size) == ("JPEG", (16, 16))
    assert store_batch(batch, None, 95)["image"].to_pylist() == list(files.values())  # no size: every image as it is
    (tmp_path / "a.jpg").write_bytes(files["a.jpg"][:30])
    with pytest.raises(DataError, match=rf"^{tmp_path}/a\.jpg: cannot decode image \("):
        store_batch(batch, 16, 95)


def test_pool_table_in_the_contract(tmp_path, root, monkeypatch):
    monkeypatch.setattr(imported, "write_on_ray", write_locally)
    rows = list_imported(str(root), None, CLASSES, BIASES)
    info = TableInfo("folder", CLASSES, BIASES, "synthetic", extra={"plan": "p1", "backend": "folder"})  # the pool says how it is made
    done = build_imported_table(rows, "pool7", 16, tmp_path / "pool", info)
    # Each imported file's size and modification time, beside the table (data/sources.py).
    recorded = pq.read_table(tmp_path / "pool" / sources.SOURCES_FILE)
    assert done.extra == {
        "plan": "p1", "pool_id": "pool7", "backend": "folder", "source": str(root), "metadata_digest": metadata_digest(str(root), None),
        "sources_digest": sources.digest(recorded),
    }
    assert recorded["path"].to_pylist() == [path.removeprefix(f"{root}/") for path in rows["path"].to_pylist()]
    assert recorded["size"].to_pylist() == [(root / path).stat().st_size for path in recorded["path"].to_pylist()]
    assert read_info(tmp_path / "pool").group_counts == {"train": {g: 3 for g in ("y0_b0", "y0_b1", "y1_b0", "y1_b1")}}
    table = read_table(tmp_path / "pool")
    by_id = {row["id"]: row for row in table.to_pylist()}
    first = by_id[pool_row_id("pool7", 0, 0, 0)]
    assert first["image"] == (root / "gen/cat_indoor_0.png").read_bytes()
    assert (first["g"], first["split"], first["prompt"], first["seed"], first["generator"]) == (
        SYNTHETIC, "train", "a photo of a cat indoor", 103, "sdxl-turbo")
    assert (first["steps"], first["guidance"], first["rejections"]) == (None, None, 0)
    assert by_id[pool_row_id("pool7", 1, 1, 2)]["image"] == (root / "gen/dog_outdoor_2.png").read_bytes()


def test_rows_must_come_from_list_imported(tmp_path):
    with pytest.raises(DataError, match="rows must come from list_imported"):
        build_imported_table(pa.table({"path": ["x"], "y": [0], "b": [0]}), "p", 16, tmp_path / "t", TableInfo("folder", CLASSES, BIASES, "synthetic"))


def test_a_folder_in_an_object_store_lists_uris(tmp_path):
    import pyarrow.fs as pafs

    from fake2real.data import storage

    storage.register_filesystem("mem", pafs._MockFileSystem())
    try:
        local = fixtures.synthetic_folder(tmp_path / "gen", per_group=1)
        for file in local.rglob("*.*"):
            storage.put_bytes(storage.Location(f"mem://bucket/gen/{file.relative_to(local)}"), file.read_bytes())
        rows = list_imported("mem://bucket/gen", None, CLASSES, BIASES)
        assert rows["path"][0].as_py() == "mem://bucket/gen/gen/cat_indoor_0.png"
        assert store_batch(rows, 16, 95)["image"][0].as_py() == (local / "gen/cat_indoor_0.png").read_bytes()
    finally:
        storage.register_filesystem("mem", None)


def test_a_split_column_separates_the_held_out_test_images(root):
    meta = (root / "metadata.csv").read_text().splitlines()
    marked = [meta[0] + ",split"] + [line + (",test" if i % 3 == 0 else ",train") for i, line in enumerate(meta[1:])]
    (root / "metadata.csv").write_text("\n".join(marked) + "\n")
    everything = list_imported(str(root), None, CLASSES, BIASES)
    train = list_imported(str(root), None, CLASSES, BIASES, split="train")
    test = list_imported(str(root), None, CLASSES, BIASES, split="test")
    assert train.num_rows + test.num_rows == everything.num_rows and test.num_rows > 0
    assert set(test["split"].to_pylist()) == {"test"}
    (root / "metadata.csv").write_text("\n".join(marked[:1] + [marked[1].rsplit(",", 1)[0] + ",val"]) + "\n")
    with pytest.raises(DataError, match=r"metadata.csv: line 2: split must be train or test, got 'val'$"):
        list_imported(str(root), None, CLASSES, BIASES)


def _escape(root, tmp_path, how: str) -> str:
    """Makes the metadata's first row (gen/dog_outdoor_0.png) reach a file outside ``root``."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret.png").write_bytes(fixtures.image(7, 16, "PNG"))
    if how == "symlinked-file":
        (root / "gen/dog_outdoor_0.png").unlink()
        (root / "gen/dog_outdoor_0.png").symlink_to(tmp_path / "outside/secret.png")
        return "gen/dog_outdoor_0.png"
    if how == "symlinked-folder":
        (root / "etc").symlink_to(tmp_path / "outside", target_is_directory=True)
        path = "etc/secret.png"
    else:
        path = {"dotdot": "../outside/secret.png", "etc-passwd": "../../../../../etc/passwd"}[how]
    edit(root, "gen/dog_outdoor_0.png", path)
    return path


@pytest.mark.parametrize("how", ["dotdot", "etc-passwd", "symlinked-file", "symlinked-folder"])
def test_a_path_that_leaves_the_folder_is_refused(tmp_path, root, how):
    path = _escape(root, tmp_path, how)
    with pytest.raises(DataError) as info:
        list_imported(str(root), None, CLASSES, BIASES)
    assert str(info.value) == f"{root}/metadata.csv: line 2: path '{path}' leaves the images' root folder {root}"


def test_links_and_dotdot_inside_the_folder_are_accepted(root):
    (root / "gen/dog_outdoor_0.png").rename(root / "gen/original.png")
    (root / "gen/dog_outdoor_0.png").symlink_to(root / "gen/original.png")
    (root / "alias").symlink_to(root / "gen", target_is_directory=True)
    edit(root, "gen/dog_outdoor_1.png", "alias/dog_outdoor_1.png")
    edit(root, "gen/dog_outdoor_2.png", "alias/../gen/dog_outdoor_2.png")
    rows = list_imported(str(root), None, CLASSES, BIASES)
    assert rows["path"].to_pylist()[-3:] == [f"{root}/{p}" for p in ("gen/dog_outdoor_0.png", "alias/dog_outdoor_1.png", "alias/../gen/dog_outdoor_2.png")]


def test_in_an_object_store_a_path_that_leaves_the_folder_is_refused_by_its_name(tmp_path):
    import pyarrow.fs as pafs

    from fake2real.data import storage

    storage.register_filesystem("mem", pafs._MockFileSystem())
    try:
        local = fixtures.synthetic_folder(tmp_path / "gen", per_group=1)
        for file in local.rglob("*.*"):
            storage.put_bytes(storage.Location(f"mem://bucket/gen/{file.relative_to(local)}"), file.read_bytes())
        storage.put_bytes(storage.Location("mem://bucket/secret.png"), fixtures.image(7, 16, "PNG"))
        meta = storage.Location("mem://bucket/gen/metadata.csv")
        text = storage.get_bytes(meta).decode()
        storage.put_bytes(meta, text.replace("gen/dog_outdoor_0.png", "gen/../../secret.png").encode())
        with pytest.raises(DataError) as info:
            list_imported("mem://bucket/gen", None, CLASSES, BIASES)
        assert str(info.value) == "mem://bucket/gen/metadata.csv: line 2: path 'gen/../../secret.png' leaves the images' root folder mem://bucket/gen"
    finally:
        storage.register_filesystem("mem", None)
