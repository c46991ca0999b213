"""Real datasets from fixture copies of their native layouts, through the Ray Data ingest job."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import native_fixtures as fixtures
from fake2real.config import build_config
from fake2real.data.table import read_info, read_table
from fake2real.entrypoints import ingest_job
from fake2real.prepare.workspace import Workspace, prepare_real
from helpers import run_job

GROUPS4 = ("y0_b0", "y0_b1", "y1_b0", "y1_b1")


def ingest(name: str, root, tmp_path, **dataset):
    config = build_config(overrides={"output_dir": str(tmp_path / "out"), "dataset": {"name": name, "root": str(root), "image_size": 16, **dataset}})
    summary = ingest_job(config)
    return config, prepare_real(config, Workspace.create(config)), summary


def test_celeba_official_split_and_bias_ratio(ray_connected, tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    config, path, summary = ingest("celeba", root, tmp_path, bias_ratio=0.9)
    info = read_info(path)
    # The reference's map: not smiling ↔ male, smiling ↔ female. Its base step keeps
    # int(20·0.1/0.9 = 2.2) = 2 minority images; at r=0.9 the target 2.2 > 2 leaves them.
    assert info.group_counts["train"] == {"y0_b0": 2, "y0_b1": 20, "y1_b0": 20, "y1_b1": 2}
    # Validation: the base step (no floor) keeps int(10·0.1/0.9 = 1.1) = 1; 1.1 > 1 then keeps it.
    assert info.group_counts["val"] == {"y0_b0": 1, "y0_b1": 10, "y1_b0": 10, "y1_b1": 1}
    assert info.group_counts["test"] == {g: 3 for g in GROUPS4}
    assert info.class_names == ["not_smiling", "smiling"] and info.bias_names == ["not_male", "male"]
    assert "| train | 2 | 20 | 20 | 2 |" in summary
    table = read_table(path)
    image = Image.open(io.BytesIO(table["image"][0].as_py()))
    assert image.format == "JPEG" and image.size == (16, 16)
    assert set(table["g"].to_pylist()) == {0} and table["prompt"].null_count == table.num_rows
    # Deterministic: the same inputs and seed give the same table.
    again = build_config(overrides={"output_dir": str(tmp_path / "again"), "dataset": config.dataset.model_dump()})
    assert read_table(prepare_real(again, Workspace.create(again))).equals(table)


def test_waterbirds_from_a_file_uri(ray_connected, tmp_path):
    root = fixtures.waterbirds(tmp_path / "waterbirds")
    _, path, _ = ingest("waterbirds", f"file://{root}", tmp_path, bias_ratio=0.9)
    info = read_info(path)
    # Landbirds ↔ land, waterbirds ↔ water; minority 2 − int(2 − 10·0.1/0.9) = 2 and 3 − int(3 − 1.1) = 2.
    assert info.group_counts["train"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    assert info.group_counts["val"] == {g: 2 for g in GROUPS4}
    assert info.group_counts["test"] == {g: 2 for g in GROUPS4}


@pytest.mark.parametrize("name, build, groups, per_group", [
    ("utkface", fixtures.utkface, GROUPS4, 30),
    ("celebahq", fixtures.celebahq, GROUPS4, 30),
    ("spuco_animals", fixtures.spuco_animals, ("y0_b0", "y0_b1", "y1_b0", "y1_b1", "y2_b2", "y2_b3", "y3_b2", "y3_b3"), 9),
])
def test_layouts_as_distributed(ray_connected, tmp_path, name, build, groups, per_group):
    root = build(tmp_path / name)
    _, path, _ = ingest(name, root, tmp_path, bias_ratio=None)
    info = read_info(path)
    totals = {g: sum(info.group_counts[s].get(g, 0) for s in ("train", "val", "test")) for g in groups}
    assert totals == {g: per_group for g in groups}  # UTK: ages 10 and 60 are dropped by the bins
    assert all(info.group_counts[s].get(g, 0) > 0 for s in ("train", "val", "test") for g in groups)
    if name == "spuco_animals":
        assert all(info.group_counts[s][g] == 3 for s in ("train", "val", "test") for g in groups)


def celeba_job(tmp_path, root, *extra, env=None):
    return run_job(
        "ingest.py", f"output_dir={tmp_path / 'out'}", "dataset.name=celeba", f"dataset.root={root}",
        "dataset.bias_ratio=0.9", "dataset.image_size=16", *extra, env=env, timeout=240,
    )


def assert_failed_cleanly(completed, tmp_path, *needles):
    assert completed.returncode == 2, completed.stdout[-2000:] + completed.stderr[-2000:]
    lines = [line for line in completed.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, completed.stderr[-3000:]
    assert all(n in lines[0] for n in needles), lines[0]
    assert not list((tmp_path / "out").rglob("table.json"))


def test_missing_metadata_file(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    (root / "list_eval_partition.txt").unlink()
    assert_failed_cleanly(celeba_job(tmp_path, root), tmp_path, "missing metadata file", "list_eval_partition.txt")


def test_listed_image_absent(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    (root / "img_align_celeba" / "000007.jpg").unlink()
    assert_failed_cleanly(celeba_job(tmp_path, root), tmp_path, "listed image", "000007.jpg", "is missing")


def test_unknown_attribute(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    assert_failed_cleanly(celeba_job(tmp_path, root, "dataset.class_attribute=Smilling"), tmp_path,
                          "dataset.class_attribute", "unknown attribute 'Smilling'", "Smiling")


def test_bias_ratio_out_of_range(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    assert_failed_cleanly(celeba_job(tmp_path, root, "dataset.bias_ratio=1.5"), tmp_path, "dataset.bias_ratio")


def test_group_left_empty(tmp_path):
    # The reference's rule keeps at least one image of a non-empty minority group: empty it here.
    counts = {**fixtures.CELEBA_COUNTS, "train": {**fixtures.CELEBA_COUNTS["train"], (1, 1): 0}}
    root = fixtures.celeba(tmp_path / "celeba", counts)
    assert_failed_cleanly(celeba_job(tmp_path, root), tmp_path, "celeba train split", "group y1_b1 is empty")


def test_corrupt_image_is_fatal_and_named(ray_head, tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    victim = root / "img_align_celeba" / "000005.jpg"
    victim.write_bytes(victim.read_bytes()[:40])  # truncated JPEG
    completed = celeba_job(tmp_path, root, env=ray_head.env)
    assert_failed_cleanly(completed, tmp_path, "000005.jpg", "cannot decode image")


def test_folder_layout_with_images_stored_as_they_are(ray_connected, tmp_path):
    root = fixtures.folder(tmp_path / "pets", metadata="metadata.parquet")
    _, path, _ = ingest("folder", root, tmp_path, bias_ratio=0.9, majority_bias={"cat": "indoor", "dog": "outdoor"})
    info = read_info(path)
    assert (info.class_names, info.bias_names) == (["cat", "dog"], ["indoor", "outdoor"])
    # Cat ↔ indoor, dog ↔ outdoor (dataset.majority_bias); minority 3 − int(3 − 10·0.1/0.9) = 2.
    assert info.group_counts["train"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    assert info.group_counts["val"] == info.group_counts["test"] == {g: 2 for g in GROUPS4}
    stored = dict(zip(*read_table(path, columns=["id", "image"]).to_pydict().values()))
    # 16² PNG and JPEG (the table's size): their own bytes; an 8² one: resized to a 16² JPEG.
    assert stored["folder-images/cat/000.png"] == (root / "images/cat/000.png").read_bytes()
    assert stored["folder-images/cat/001.jpg"] == (root / "images/cat/001.jpg").read_bytes()
    small = Image.open(io.BytesIO(stored["folder-images/cat/002.png"]))
    assert (small.format, small.size) == ("JPEG", (16, 16))


def test_bad_label_in_annotation_file(tmp_path):
    # Line 5 is 000003.jpg; Smiling (the class) must be 1 or -1.
    root = fixtures.celeba(tmp_path / "celeba")
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    fields = lines[4].split()
    fields[3] = "0"
    lines[4] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    assert_failed_cleanly(celeba_job(tmp_path, root), tmp_path, "list_attr_celeba.txt: line 5: Smiling must be 1 or -1, got '0'")


def test_binary_annotation_file(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    (root / "list_eval_partition.txt").write_bytes(fixtures.jpeg(0))
    assert_failed_cleanly(celeba_job(tmp_path, root), tmp_path, "list_eval_partition.txt is not UTF-8 text (byte 0xff at offset 0)")
