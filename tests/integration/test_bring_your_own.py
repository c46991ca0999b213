"""The whole FFR comparison on images a user already has — a folder and a CSV for the real data,
a folder and a CSV for the synthetic images — with no code: one sweep, none / usb / ffr with ERM.
And a pool grown by the generation job in two runs equals a pool made at once (Ray Data path)."""

from __future__ import annotations

import pytest

import native_fixtures as fixtures
from fake2real.config import build_config
from fake2real.data.table import read_info, read_table
from fake2real.errors import ConfigError
from fake2real.presets import preset
from fake2real.run.sweep import run_sweep
from fake2real.entrypoints import generate_job

GROUPS4 = ("y0_b0", "y0_b1", "y1_b0", "y1_b1")


def byo_config(tmp_path, real, synthetic, **generation):
    return build_config(
        overrides={
            "output_dir": str(tmp_path / "out"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "byo"},
            "dataset": {"name": "folder", "root": str(real), "bias_ratio": None, "image_size": 16},
            "generation": {"backend": "folder", "folder": {"root": str(synthetic)}, "output_size": 16, "test_images_per_group": 2, **generation},
            "train": {"num_workers": 1},
            "sweep": {"mixtures": ["none", "usb", "ffr"], "methods": ["erm"], "search": {"num_samples": 0}},
        },
        base=preset("smoke"),
    )


def test_ffr_on_your_own_folders(ray_connected, tmp_path):
    real = fixtures.folder(tmp_path / "pets")
    synthetic = fixtures.synthetic_folder(tmp_path / "generated", per_group=12)
    metadata = (synthetic / "metadata.csv").read_text().splitlines()
    # The last two images of every group are the held-out synthetic test set.
    marked = [metadata[0] + ",split"] + [line + (",test" if i >= len(metadata) - 1 - 8 else ",train") for i, line in enumerate(metadata[1:])]
    (synthetic / "metadata.csv").write_text("\n".join(marked) + "\n")

    outcome = run_sweep(byo_config(tmp_path, real, synthetic))
    cells = {(r.mixture, r.method): r for r in outcome.results}
    assert set(cells) == {("none", "erm"), ("usb", "erm"), ("ffr", "erm")}
    for result in cells.values():
        assert 0.0 <= result.metrics["test/worst_group_accuracy"] <= 1.0
        assert 0.0 <= result.metrics["synthetic_test/worst_group_accuracy"] <= 1.0

    data = tmp_path / "out" / "data"
    pools = {p.name: read_info(p) for p in data.glob("pool-*")}
    assert len(pools) == 2  # the imported train images and the held-out test images: two pools, imported once
    train_pool = next(p for p in pools if not p.startswith("pool-test-"))
    assert pools[train_pool].group_counts["train"] == {g: 10 for g in GROUPS4}
    assert pools[train_pool].extra["backend"] == "folder"
    rows = read_table(data / train_pool)
    # Imported at the real table's size: stored as they are, provenance kept.
    assert set(rows["generator"].to_pylist()) == {"sdxl-turbo"} and set(rows["g"].to_pylist()) == {1}
    assert set(rows["image"].to_pylist()) <= {p.read_bytes() for p in (synthetic / "gen").glob("*.png")}

    # Real train groups 10/3/3/10: usb adds 7 to each small group, ffr 14 // 4 = 3 to each group,
    # both drawn from the one pool (views, no copies).
    drawn = {p.name: read_info(p) for p in data.glob("synthetic-folder-*")}
    counts = sorted(sorted(i.group_counts["train"].items()) for i in drawn.values())
    assert counts == [[("y0_b0", 3), ("y0_b1", 3), ("y1_b0", 3), ("y1_b1", 3)], [("y0_b1", 7), ("y1_b0", 7)]]
    assert not list((data / next(iter(drawn))).glob("part-*.parquet"))


def test_a_folder_pool_too_small_for_a_cell_is_refused_naming_the_shortfall(ray_connected, tmp_path):
    real = fixtures.folder(tmp_path / "pets")
    synthetic = fixtures.synthetic_folder(tmp_path / "generated", per_group=4)
    with pytest.raises(ConfigError) as error:
        run_sweep(byo_config(tmp_path, real, synthetic, images_per_group=6, test_images_per_group=0))
    message = str(error.value)
    assert "\n" not in message and message.startswith("config: generation.folder: ")
    assert "holds 4 train images of group y0_b0 (cat, indoor); 6 are needed (short by 2)" in message


def test_a_pool_grown_by_the_job_equals_one_made_at_once(ray_connected, tmp_path, capsys):
    def generate(output, per_group):
        generate_job(build_config(overrides={"output_dir": str(tmp_path / "out"), "dataset": {"shapes": {"image_size": 16}},
                                                   "generation": {"output": str(tmp_path / output), "images_per_group": per_group}}))

    generate("grown", 3)
    capsys.readouterr()
    generate("grown", 5)
    assert "12 images held, 8 to make (y0_b0: 3 held + 2 to make" in capsys.readouterr().out  # only the new images
    generate("at-once", 5)
    assert "0 images held, 20 to make" in capsys.readouterr().out
    grown, whole = read_table(tmp_path / "grown"), read_table(tmp_path / "at-once")
    assert grown.num_rows == 20 and grown.equals(whole)
