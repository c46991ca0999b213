"""``dataset.name: folder`` without Ray: its listing, labels, splits, the bias-ratio rule with
``majority_bias``, one-line errors for every bad layout, and images stored as they are."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

import native_fixtures as fixtures
from helpers import write_locally
from fake2real.config import build_config
from fake2real.data import ingest
from fake2real.data.datasets import get_dataset
from fake2real.data.datasets.folder import Folder
from fake2real.data.datasets._common import seeded_split
from fake2real.data.ingest import listing, majority_map
from fake2real.data.table import count_groups, read_info, read_table
from fake2real.errors import ConfigError, DataError
from fake2real.sections import DatasetConfig
from fake2real.prepare.workspace import planned_real_info

GROUPS = ("y0_b0", "y0_b1", "y1_b0", "y1_b1")
AS_DISTRIBUTED = {
    split: {f"y{'cat dog'.split().index(c)}_b{'indoor outdoor'.split().index(b)}": n for (c, b), n in groups.items()}
    for split, groups in fixtures.FOLDER_COUNTS.items()
}


def config(root, **fields) -> DatasetConfig:
    return DatasetConfig(name="folder", root=str(root), **{"bias_ratio": None, **fields})


@pytest.fixture
def root(tmp_path):
    return fixtures.folder(tmp_path / "pets")


def test_registered_and_listed_as_distributed(root):
    assert get_dataset("folder") is Folder
    rows = listing(config(root), Folder)
    assert count_groups(rows) == AS_DISTRIBUTED
    assert Folder.names(config(root)) == (["cat", "dog"], ["indoor", "outdoor"])
    assert rows["path"][0].as_py() == f"{root}/images/cat/000.png"
    assert rows["id"][0].as_py() == "folder-images/cat/000.png"


def test_parquet_metadata_gives_the_same_listing(tmp_path, root):
    other = fixtures.folder(tmp_path / "parquet", metadata="metadata.parquet")
    a, b = listing(config(root), Folder), listing(config(other), Folder)
    assert a.drop_columns(["path"]).equals(b.drop_columns(["path"]))


def test_metadata_file_by_name_and_default_parquet(tmp_path):
    root = tmp_path / "pets"
    fixtures.write_metadata(root / "meta" / "labels.parquet", fixtures.folder_rows(root))
    assert count_groups(listing(config(root, metadata="meta/labels.parquet"), Folder)) == AS_DISTRIBUTED
    fixtures.write_metadata(root / "metadata.parquet", fixtures.folder_rows(root))
    assert count_groups(listing(config(root), Folder)) == AS_DISTRIBUTED  # no metadata.csv: metadata.parquet


def test_given_names_set_the_indices_and_labels_may_be_indices(tmp_path, root):
    flipped = count_groups(listing(config(root, class_names=["dog", "cat"], bias_names=["indoor", "outdoor"]), Folder))
    assert flipped["train"] == {"y0_b0": 3, "y0_b1": 10, "y1_b0": 10, "y1_b1": 3}
    # Integer labels are indices into the given names (here in Parquet, as integers).
    rows = fixtures.folder_rows(tmp_path / "ints")
    for row in rows:
        row["class"], row["bias"] = ["cat", "dog"].index(row["class"]), ["indoor", "outdoor"].index(row["bias"])
    fixtures.write_metadata(tmp_path / "ints" / "metadata.parquet", rows)
    named = config(tmp_path / "ints", class_names=["cat", "dog"], bias_names=["indoor", "outdoor"])
    assert count_groups(listing(named, Folder)) == AS_DISTRIBUTED
    # Without names, integer labels are the names themselves, in numeric order.
    assert Folder.names(config(tmp_path / "ints")) == (["0", "1"], ["0", "1"])


def test_without_a_split_column_the_split_is_seeded(tmp_path):
    root = fixtures.folder(tmp_path / "pets", counts={"train": {g: 40 for g in fixtures.FOLDER_COUNTS["train"]}}, split_column=False)
    rows = listing(config(root, split_seed=3), Folder)
    assert rows["split"].to_pylist() == seeded_split(rows["id"].to_pylist(), 3)
    assert set(rows["split"].to_pylist()) == {"train", "val", "test"}
    assert listing(config(root, split_seed=4), Folder)["split"].to_pylist() != rows["split"].to_pylist()


def test_bias_ratio_needs_a_majority_map(root):
    with pytest.raises(ConfigError) as info:
        listing(config(root, bias_ratio=0.9), Folder)
    assert str(info.value) == (
        "config: dataset.majority_bias is required for dataset 'folder' with a bias_ratio (it has no reference map), "
        "e.g. {cat: indoor, dog: outdoor}; or set dataset.bias_ratio: null to keep the data as distributed"
    )
    named = config(root, bias_ratio=0.9, majority_bias={"cat": "indoor", "dog": "outdoor"})
    assert majority_map(named, Folder) == {0: 0, 1: 1}
    counts = count_groups(listing(named, Folder))
    # As Waterbirds (no base step): 10·0.1/0.9 = 1.1 → 3 − int(3 − 1.1) = 2 minority images kept.
    assert counts["train"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    assert counts["val"] == counts["test"] == {g: 2 for g in GROUPS}
    assert majority_map(config(root), Folder) == {}  # as distributed: nothing subsampled, no map needed


def test_from_a_yaml_override(root):
    built = build_config(overrides=[
        "dataset.name=folder", f"dataset.root={root}", "dataset.majority_bias={cat: indoor, dog: outdoor}", "dataset.bias_ratio=0.9",
    ])
    assert count_groups(listing(built.dataset, Folder))["train"]["y0_b1"] == 2


def rewrite(root, edit) -> None:
    """Rewrites metadata.csv's text with ``edit``."""
    path = root / "metadata.csv"
    path.write_text(edit(path.read_text()))


BAD_LAYOUTS = [
    # (what is done to the layout, the whole error as a pattern)
    (lambda r: (r / "metadata.csv").unlink(), r"^missing metadata file {root}/metadata\.csv \(or metadata\.parquet\)$"),
    (lambda r: rewrite(r, lambda t: t.replace('"bias"', '"place"', 1)),
     r"^{root}/metadata\.csv: missing column 'bias' \(columns: path, class, place, split; needs path, class, bias\)$"),
    (lambda r: rewrite(r, lambda t: t.replace('"train"', '"training"', 1)),
     r"^{root}/metadata\.csv: line 2: split must be train, val or test, got 'training'$"),
    (lambda r: (r / "images/cat/003.jpg").unlink(), r"^listed image '{root}/images/cat/003\.jpg' is missing \(1 missing in all\)$"),
    (lambda r: rewrite(r, lambda t: t.replace("images/cat/003.jpg", "images/cat/003.jpg ")),  # a trailing space shows
     r"^listed image '{root}/images/cat/003\.jpg ' is missing \(1 missing in all\)$"),
    (lambda r: rewrite(r, lambda t: t.replace("images/cat/003.jpg", "images/cat")),
     r"^listed image '{root}/images/cat' is a directory, not an image file \(1 in all\)$"),
    (lambda r: rewrite(r, lambda t: t.replace("images/cat/001.jpg", "images/cat/000.png")),
     r"^{root}/metadata\.csv: line 3: path 'images/cat/000\.png' is listed twice \(first at line 2\)$"),
    (lambda r: rewrite(r, lambda t: t.replace('"cat","outdoor"', '"cat","indoor"')),
     r"^{root}/metadata\.csv: class 'cat' has only one bias value \('indoor'\): its bias cannot be studied$"),
    (lambda r: rewrite(r, lambda t: t.replace('"dog"', '"cat"')),
     r"^{root}/metadata\.csv: the folder dataset needs at least 2 classes, found 1 \(cat\)$"),
    (lambda r: rewrite(r, lambda t: t.replace('"outdoor"', '"indoor"')),
     r"^{root}/metadata\.csv: the folder dataset needs at least 2 bias values, found 1 \(indoor\)$"),
    (lambda r: rewrite(r, lambda t: t.splitlines()[0] + "\n"),
     r"^{root}/metadata\.csv: no rows \(the folder dataset needs one row per image: path, class, bias\)$"),
    (lambda r: (r / "metadata.csv").write_bytes(fixtures.image(0)), r"^{root}/metadata\.csv: cannot read it as CSV \(UTF-8 text, a header line first\): "),
    (lambda r: (r / "metadata.csv").write_bytes("path,class,bias\né.png,chat,intérieur\n".encode("latin-1")),
     r"^{root}/metadata\.csv: cannot read it as CSV \(UTF-8 text, a header line first\): .*invalid UTF8"),
    (lambda r: rewrite(r, lambda t: t.replace('"dog","indoor"', '"","indoor"', 1)),
     r"^{root}/metadata\.csv: line \d+: empty class$"),
    (lambda r: rewrite(r, lambda t: t.replace("images/cat/001.jpg", "/images/cat/001.jpg")),
     r"^{root}/metadata\.csv: line 3: path '/images/cat/001\.jpg' must be relative to the images' root folder$"),
]


@pytest.mark.parametrize(("damage", "pattern"), BAD_LAYOUTS)
def test_bad_layouts_fail_in_one_line(root, damage, pattern):
    damage(root)
    with pytest.raises(DataError, match=pattern.format(root=root)) as info:
        listing(config(root), Folder)
    assert "\n" not in str(info.value)


def test_unknown_label_names_the_file_the_line_the_value_and_the_known_labels(root):
    rewrite(root, lambda t: t.replace('"dog","indoor"', '"dgo","indoor"', 1))
    line = next(i for i, text in enumerate((root / "metadata.csv").read_text().splitlines(), 1) if '"dgo"' in text)
    with pytest.raises(DataError) as info:
        listing(config(root, class_names=["cat", "dog"], bias_names=["indoor", "outdoor"]), Folder)
    assert str(info.value) == f"{root}/metadata.csv: line {line}: unknown class 'dgo' (known: cat, dog)"
    with pytest.raises(DataError, match=r"unknown bias '7' \(known: indoor, outdoor\)$"):
        rewrite(root, lambda t: t.replace('"dgo","indoor"', '"dog","7"'))
        listing(config(root, class_names=["cat", "dog"], bias_names=["indoor", "outdoor"]), Folder)


def test_a_named_class_without_rows_is_refused(root):
    with pytest.raises(DataError, match=r"metadata\.csv: class 'bird' has no rows$"):
        listing(config(root, class_names=["cat", "dog", "bird"]), Folder)


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "celeba", "root": "/x", "class_names": ["a", "b"]}, "config: dataset.class_names is for dataset 'folder' only (dataset.name is 'celeba')"),
    ({"name": "folder", "root": "/x", "bias_names": ["a", "a"]}, "config: dataset.bias_names: needs at least 2 distinct names, got ['a', 'a']"),
    ({"name": "folder"}, "config: dataset.root is required for dataset 'folder' (the folder of its native layout)"),
])
def test_folder_config_checks(fields, message):
    with pytest.raises(ConfigError) as info:
        build_config(overrides={"dataset": fields})
    assert str(info.value) == message


def noise(size: int, image_format: str, mode: str = "RGB") -> bytes:
    return fixtures.image(size, size, image_format, mode)


def test_ingest_stores_images_of_the_right_size_as_they_are(tmp_path):
    files = {
        "a.jpg": noise(16, "JPEG"), "b.png": noise(16, "PNG"), "c.png": noise(16, "PNG", "L"),  # as they are
        "d.jpg": noise(8, "JPEG"), "e.png": noise(32, "PNG"),  # other sizes: resized, JPEG
        "f.png": _encoded(Image.new("RGBA", (16, 16)), "PNG"),  # RGBA: re-encoded
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    batch = pa.table({"id": list(files), "path": [str(tmp_path / n) for n in files]})
    out = dict(zip(files, ingest._decode_batch(batch, str(tmp_path), 16, 95)["image"].to_pylist()))
    assert all(out[n] == files[n] for n in ("a.jpg", "b.png", "c.png"))
    for name in ("d.jpg", "e.png", "f.png"):
        image = Image.open(io.BytesIO(out[name]))
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (16, 16)), name


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def test_a_corrupt_image_is_named(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(noise(16, "JPEG")[:40])
    with pytest.raises(DataError, match=rf"^{tmp_path}/bad\.jpg: cannot decode image \("):
        ingest._decode_batch(pa.table({"path": [str(tmp_path / "bad.jpg")]}), str(tmp_path), 16, 95)


def test_native_table_of_a_folder_without_ray(tmp_path, root, monkeypatch):
    monkeypatch.setattr(ingest, "write_on_ray", write_locally)
    named = config(root, image_size=16, bias_ratio=0.9, majority_bias={"cat": "indoor", "dog": "outdoor"})
    ingest.build_native_table(named, Folder, tmp_path / "table")
    info = read_info(tmp_path / "table")
    assert (info.dataset, info.class_names, info.bias_names, info.source) == ("folder", ["cat", "dog"], ["indoor", "outdoor"], "real")
    assert info.group_counts["train"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    table = read_table(tmp_path / "table")
    stored = dict(zip(table["id"].to_pylist(), table["image"].to_pylist()))
    assert stored["folder-images/cat/000.png"] == (root / "images/cat/000.png").read_bytes()  # 16², PNG: as it is
    small = Image.open(io.BytesIO(stored["folder-images/cat/002.png"]))  # 8² in the fixture
    assert (small.format, small.size) == ("JPEG", (16, 16))
    assert set(table["g"].to_pylist()) == {0} and np.all(table["prompt"].is_null())


def outside(tmp_path):
    """A folder beside the dataset's root, holding an image the metadata must not reach."""
    folder = tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    (folder / "secret.png").write_bytes(noise(16, "PNG"))
    return folder


def link_file(root, tmp_path) -> str:
    (root / "images/cat/000.png").unlink()
    (root / "images/cat/000.png").symlink_to(outside(tmp_path) / "secret.png")
    return "images/cat/000.png"


def link_folder(root, tmp_path) -> str:
    (root / "images/etc").symlink_to(outside(tmp_path), target_is_directory=True)
    rewrite(root, lambda t: t.replace("images/cat/000.png", "images/etc/secret.png"))
    return "images/etc/secret.png"


def listed(path: str):
    def damage(root, tmp_path) -> str:
        outside(tmp_path)
        rewrite(root, lambda t: t.replace("images/cat/000.png", path))
        return path
    return damage


ESCAPES = [
    listed("../outside/secret.png"),
    listed("images/cat/../../../outside/secret.png"),
    listed("../../../../../etc/passwd"),
    link_file,  # a listed file that is a symlink out of the root
    link_folder,  # a folder under the root that is a symlink out of it
]


@pytest.mark.parametrize("escape", ESCAPES, ids=["dotdot", "dotdot-deeper", "etc-passwd", "symlinked-file", "symlinked-folder"])
def test_a_path_that_leaves_the_root_is_refused_before_any_image_is_read(tmp_path, make_config, root, escape):
    path = escape(root, tmp_path)
    with pytest.raises(DataError) as info:
        listing(config(root), Folder)
    assert str(info.value) == f"{root}/metadata.csv: line 2: path '{path}' leaves the images' root folder {root}"
    # The dry run lists the same way: it refuses too, with nothing written.
    built = make_config(dataset={"name": "folder", "root": str(root), "bias_ratio": None})
    with pytest.raises(DataError, match="leaves the images' root folder"):
        planned_real_info(built)
    assert not (tmp_path / "out").exists()


def test_paths_that_stay_under_the_root_are_accepted(tmp_path, root):
    (root / "images/kitty").symlink_to(root / "images/cat", target_is_directory=True)  # a folder linked inside
    (root / "images/cat/000.png").rename(root / "images/cat/original.png")
    (root / "images/cat/000.png").symlink_to(root / "images/cat/original.png")  # a file linked inside
    rewrite(root, lambda t: t.replace("images/cat/001.jpg", "images/kitty/001.jpg").replace("images/cat/003.jpg", "images/dog/../cat/003.jpg"))
    rows = listing(config(root), Folder)
    assert count_groups(rows) == AS_DISTRIBUTED
    assert f"{root}/images/dog/../cat/003.jpg" in rows["path"].to_pylist()
    (tmp_path / "via").symlink_to(root, target_is_directory=True)  # a root reached through a link
    assert count_groups(listing(config(tmp_path / "via"), Folder)) == AS_DISTRIBUTED


def test_a_metadata_file_outside_the_root_is_refused(tmp_path, root):
    fixtures.write_metadata(tmp_path / "labels.csv", fixtures.folder_rows(root))
    with pytest.raises(DataError) as info:
        listing(config(root, metadata="../labels.csv"), Folder)
    assert str(info.value) == f"metadata file '../labels.csv' leaves the images' root folder {root}"
    (root / "metadata.csv").unlink()
    (root / "metadata.csv").symlink_to(tmp_path / "labels.csv")
    with pytest.raises(DataError, match=rf"^metadata file 'metadata\.csv' leaves the images' root folder {root}$"):
        listing(config(root), Folder)


def with_labels(root, labels: dict[int, tuple[str, str]]) -> None:
    """metadata.csv with biases 0 and 1 (not names), and the given lines' (class, bias) set."""
    rewrite(root, lambda t: t.replace('"indoor"', '"0"').replace('"outdoor"', '"1"'))
    lines = (root / "metadata.csv").read_text().splitlines()
    for number, (cls, bias) in labels.items():
        path, _, _, split = lines[number - 1].split(",")
        lines[number - 1] = ",".join([path, f'"{cls}"', f'"{bias}"', split])
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


STRAY = " too few for its groups to have train, val and test rows (a stray value?)"


@pytest.mark.parametrize(("labels", "message"), [
    ({6: ("cat", "2")}, "line 6: bias '2' is on this line only:"),  # a 2 among 0s and 1s
    ({12: ("cat", "2"), 6: ("cat", "2")}, "line 6: bias '2' is on 2 lines only (the first here):"),
    ({10: ("cta", "0")}, "line 10: class 'cta' is on this line only:"),
    ({6: ("cat", "2"), 7: ("cat", "2"), 10: ("cat", "7")}, "line 10: bias '7' is on this line only:"),  # the rarest first
])
def test_a_stray_label_is_named_with_its_line(tmp_path, make_config, labels, message):
    root = fixtures.folder(tmp_path / "pets")
    with_labels(root, labels)
    built = make_config(dataset={"name": "folder", "root": str(root), "bias_ratio": None})
    for listed in (lambda: listing(config(root), Folder), lambda: planned_real_info(built)):  # the ingest, the dry run
        with pytest.raises(DataError) as info:
            listed()
        assert str(info.value) == f"{root}/metadata.csv: {message}{STRAY}"
