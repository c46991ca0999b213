"""Labels in the native annotation files are checked while listing (no Ray): one line naming the
file, the line (1-based, header included) or file name, and the bad value with what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

import native_fixtures as fixtures
from fake2real.data.datasets import DATASETS
from fake2real.data.ingest import listing
from fake2real.errors import DataError
from fake2real.sections import DatasetConfig

READERS = {name: DATASETS[name] for name in ("waterbirds", "celeba", "celebahq", "utkface", "spuco_animals")}
BUILD = {
    "waterbirds": fixtures.waterbirds,
    "celeba": fixtures.celeba,
    "celebahq": lambda root: fixtures.celebahq(root, per_group=3),
    "utkface": lambda root: fixtures.utkface(root, per_group=3),
    "spuco_animals": lambda root: fixtures.spuco_animals(root, per_group=1),
}
# Columns of the fixtures' files: Waterbirds' metadata.csv and the CelebA attribute tables.
WB = {"img_filename": 1, "y": 2, "split": 3, "place": 4}
ATTR = {"Male": 2, "Smiling": 3, "Young": 4}  # after the image name and 5_o_Clock_Shadow


def _list(name: str, root: Path):
    return listing(DatasetConfig(name=name, root=str(root), bias_ratio=None), READERS[name])


def edit_fields(file: str, line: int, sep: str | None = None, **changes):
    """A mutation: on ``line`` of ``file``, set fields by index (``f2="x"``), drop (``drop=n``) or add (``add=v``) some."""
    def mutate(root: Path) -> None:
        path = root / file
        lines = path.read_text().splitlines()
        fields = lines[line - 1].split(sep)
        for key, value in changes.items():
            if key == "drop":
                fields = fields[:-value]
            elif key == "add":
                fields.append(value)
            else:
                fields[int(key[1:])] = value
        lines[line - 1] = (sep or " ").join(fields)
        path.write_text("\n".join(lines) + "\n")
    return mutate


def wb(line: int, **changes):
    return edit_fields("metadata.csv", line, ",", **{f"f{WB[k]}" if k in WB else k: v for k, v in changes.items()})


def attr(file: str, line: int, attribute: str, value: str):
    return edit_fields(file, line, **{f"f{ATTR[attribute]}": value})


def binary(file: str):
    def mutate(root: Path) -> None:
        (root / file).write_bytes(b"count\n" + fixtures.jpeg(0))
    return mutate


def utk_file(name: str):
    def mutate(root: Path) -> None:
        fixtures.write(root / name, 7)
    return mutate


def remove_line(file: str, line: int):
    def mutate(root: Path) -> None:
        lines = (root / file).read_text().splitlines()
        del lines[line - 1]
        (root / file).write_text("\n".join(lines) + "\n")
    return mutate


def append_line(file: str, text: str):
    def mutate(root: Path) -> None:
        with open(root / file, "a") as out:
            out.write(text + "\n")
    return mutate


def spuco_extra(relative: str, image: bool = False):
    def mutate(root: Path) -> None:
        if image:
            fixtures.write(root / relative, 7)
        else:
            fixtures.write(root / relative / "0.jpg", 7)
    return mutate


ATTR_FILE, PART_FILE, HQ_FILE = "list_attr_celeba.txt", "list_eval_partition.txt", "CelebAMask-HQ-attribute-anno.txt"
BAD = [
    # Waterbirds: line 7 is image 6 (006.Bird_0/Bird_0006.jpg, y 0, split 0, place 0).
    ("waterbirds", wb(7, y="2"), "{root}/metadata.csv: line 7: y must be 0 or 1, got '2'", "wb-y-2"),
    ("waterbirds", wb(7, y="abc"), "{root}/metadata.csv: line 7: y must be 0 or 1, got 'abc'", "wb-y-text"),
    ("waterbirds", wb(7, y=""), "{root}/metadata.csv: line 7: y must be 0 or 1, got ''", "wb-y-empty"),
    ("waterbirds", wb(7, y="-1"), "{root}/metadata.csv: line 7: y must be 0 or 1, got '-1'", "wb-y-negative"),
    ("waterbirds", wb(9, place="abc"), "{root}/metadata.csv: line 9: place must be 0 or 1, got 'abc'", "wb-place-text"),
    ("waterbirds", wb(9, place="2"), "{root}/metadata.csv: line 9: place must be 0 or 1, got '2'", "wb-place-2"),
    ("waterbirds", wb(40, split="3"), "{root}/metadata.csv: line 40: split must be 0, 1 or 2, got '3'", "wb-split-3"),
    ("waterbirds", wb(40, split="test"), "{root}/metadata.csv: line 40: split must be 0, 1 or 2, got 'test'", "wb-split-name"),
    ("waterbirds", wb(7, img_filename=""), "{root}/metadata.csv: line 7: empty img_filename", "wb-empty-filename"),
    ("waterbirds", wb(7, drop=1), "{root}/metadata.csv: line 7: 5 values for 6 columns", "wb-short-row"),
    ("waterbirds", wb(7, add="x"), "{root}/metadata.csv: line 7: 7 values for 6 columns", "wb-long-row"),
    ("waterbirds", binary("metadata.csv"),
     "{root}/metadata.csv is not UTF-8 text (byte 0xff at offset 6): is it the annotation file?", "wb-binary"),
    # CelebA: line 3 of the attribute file is 000001.jpg; line N of the partition file is image N.
    ("celeba", attr(ATTR_FILE, 5, "Smiling", "0"), "{root}/list_attr_celeba.txt: line 5: Smiling must be 1 or -1, got '0'", "celeba-class-0"),
    ("celeba", attr(ATTR_FILE, 5, "Smiling", "yes"), "{root}/list_attr_celeba.txt: line 5: Smiling must be 1 or -1, got 'yes'", "celeba-class-text"),
    ("celeba", attr(ATTR_FILE, 8, "Male", "2"), "{root}/list_attr_celeba.txt: line 8: Male must be 1 or -1, got '2'", "celeba-bias-2"),
    ("celeba", edit_fields(ATTR_FILE, 5, drop=1), "{root}/list_attr_celeba.txt: line 5: row for 000003.jpg has 3 values for 4 attributes",
     "celeba-attr-short-row"),
    ("celeba", edit_fields(PART_FILE, 4, f1="3"), "{root}/list_eval_partition.txt: line 4: partition must be 0, 1 or 2, got '3'",
     "celeba-partition-3"),
    ("celeba", edit_fields(PART_FILE, 4, f1="train"), "{root}/list_eval_partition.txt: line 4: partition must be 0, 1 or 2, got 'train'",
     "celeba-partition-name"),
    ("celeba", edit_fields(PART_FILE, 4, drop=1), "{root}/list_eval_partition.txt: line 4: expected '<image> <partition>', got '000004.jpg'",
     "celeba-partition-short-row"),
    ("celeba", edit_fields(PART_FILE, 4, add="1"), "{root}/list_eval_partition.txt: line 4: expected '<image> <partition>', got '000004.jpg 0 1'",
     "celeba-partition-long-row"),
    ("celeba", remove_line(PART_FILE, 5),
     "{root}/list_eval_partition.txt: no partition for 000005.jpg (listed at line 7 of list_attr_celeba.txt)", "celeba-partition-missing"),
    ("celeba", append_line(PART_FILE, "000002.jpg 2"), "{root}/list_eval_partition.txt: line 91: 000002.jpg is listed twice (first at line 2)",
     "celeba-partition-twice"),
    ("celeba", binary(ATTR_FILE), "{root}/list_attr_celeba.txt is not UTF-8 text (byte 0xff at offset 6): is it the annotation file?",
     "celeba-attr-binary"),
    ("celeba", binary(PART_FILE), "{root}/list_eval_partition.txt is not UTF-8 text (byte 0xff at offset 6): is it the annotation file?",
     "celeba-partition-binary"),
    # CelebA-HQ: line 3 is 0.jpg.
    ("celebahq", attr(HQ_FILE, 4, "Smiling", "0"), f"{{root}}/{HQ_FILE}: line 4: Smiling must be 1 or -1, got '0'", "celebahq-class-0"),
    ("celebahq", attr(HQ_FILE, 14, "Male", "abc"), f"{{root}}/{HQ_FILE}: line 14: Male must be 1 or -1, got 'abc'", "celebahq-bias-text"),
    ("celebahq", binary(HQ_FILE), f"{{root}}/{HQ_FILE} is not UTF-8 text (byte 0xff at offset 6): is it the annotation file?", "celebahq-binary"),
    # UTK-Face: the file name is the row.
    ("utkface", utk_file("30_2_0_20170109000077.jpg.chip.jpg"),
     "{root}/30_2_0_20170109000077.jpg.chip.jpg: gender must be 0 or 1, got '2'", "utk-gender-2"),
    ("utkface", utk_file("30_m_0_20170109000077.jpg.chip.jpg"),
     "{root}/30_m_0_20170109000077.jpg.chip.jpg: gender must be 0 or 1, got 'm'", "utk-gender-text"),
    ("utkface", utk_file("abc_1_0_20170109000077.jpg.chip.jpg"),
     "{root}/abc_1_0_20170109000077.jpg.chip.jpg: not a UTK-Face file name (age_gender_race_date.jpg)", "utk-age-text"),
    ("utkface", utk_file("-3_1_0_20170109000077.jpg.chip.jpg"),
     "{root}/-3_1_0_20170109000077.jpg.chip.jpg: not a UTK-Face file name (age_gender_race_date.jpg)", "utk-age-negative"),
    ("utkface", utk_file("30_1.jpg"), "{root}/30_1.jpg: not a UTK-Face file name (age_gender_race_date.jpg)", "utk-too-few-parts"),
    ("utkface", utk_file("photo.jpg"), "{root}/photo.jpg: not a UTK-Face file name (age_gender_race_date.jpg)", "utk-no-parts"),
    # SpuCo Animals: the labels are the folder names.
    ("spuco_animals", spuco_extra("spuco_birds/train/waterbirds/sea"),
     "{root}/spuco_birds/train/waterbirds: unexpected folder 'sea' (the bias folders are land, water)", "spuco-bias-folder"),
    ("spuco_animals", spuco_extra("spuco_dogs/val/medium_dogs/indoor"),
     "{root}/spuco_dogs/val: unexpected folder 'medium_dogs' (the class folders are small_dogs, big_dogs)", "spuco-class-folder"),
    ("spuco_animals", spuco_extra("spuco_dogs/test/big_dogs/stray.jpg", image=True),
     "{root}/spuco_dogs/test/big_dogs: image 'stray.jpg' outside the bias folders (indoor, outdoor)", "spuco-image-outside"),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), [pytest.param(*case[:3], id=case[3]) for case in BAD])
def test_bad_label_is_one_line(tmp_path, name, mutate, expected):
    root = BUILD[name](tmp_path / name)
    mutate(root)
    with pytest.raises(DataError) as info:
        _list(name, root)
    assert str(info.value) == expected.format(root=root)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(READERS))
def test_good_fixtures_still_list(tmp_path, name):
    rows = _list(name, getattr(fixtures, name)(tmp_path / name))  # the fixtures' full sizes: every group in every split
    class_names, bias_names = READERS[name].names(DatasetConfig(name=name, root=str(tmp_path)))
    assert rows.num_rows > 0
    assert set(rows["y"].to_pylist()) == set(range(len(class_names)))
    assert set(rows["b"].to_pylist()) == set(range(len(bias_names)))


def test_celeba_checks_only_the_chosen_attributes(tmp_path):
    # Young is neither class nor bias: an odd value there is not this run's concern.
    root = fixtures.celeba(tmp_path / "celeba")
    attr(ATTR_FILE, 5, "Young", "0")(root)
    assert _list("celeba", root).num_rows == sum(sum(groups.values()) for groups in fixtures.CELEBA_COUNTS.values())


def test_celeba_partition_may_list_more_images(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    append_line(PART_FILE, "999999.jpg 2")(root)
    assert _list("celeba", root).num_rows == sum(sum(groups.values()) for groups in fixtures.CELEBA_COUNTS.values())


def test_annotation_file_with_a_byte_order_mark_lists(tmp_path):
    # As a spreadsheet or Notepad saves it: without the mark dropped, the first image would have no partition.
    root = fixtures.celeba(tmp_path / "celeba")
    (root / PART_FILE).write_bytes(b"\xef\xbb\xbf" + (root / PART_FILE).read_bytes())
    assert _list("celeba", root).num_rows == sum(sum(groups.values()) for groups in fixtures.CELEBA_COUNTS.values())


def test_utkface_name_without_race_lists(tmp_path):
    # A few distributed UTK-Face files lack the race (e.g. 39_1_20170116174525125.jpg.chip.jpg): only age and gender are read.
    root = fixtures.utkface(tmp_path / "utkface")
    before = _list("utkface", root).num_rows
    utk_file("39_1_20170116174525125.jpg.chip.jpg")(root)
    assert _list("utkface", root).num_rows == before + 1


def test_spuco_hidden_entries_are_ignored(tmp_path):
    root = BUILD["spuco_animals"](tmp_path / "spuco")
    before = _list("spuco_animals", root).num_rows
    spuco_extra("spuco_birds/train/waterbirds/.cache")(root)
    (root / "spuco_birds/train/.DS_Store").write_bytes(b"\x00")
    assert _list("spuco_animals", root).num_rows == before
