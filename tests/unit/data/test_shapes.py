"""The built-in ``shapes`` benchmark: real-table counts, rendering determinism, empty groups."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fake2real.data.datasets.shapes import ShapesWorld
from fake2real.sections import DatasetConfig
from fake2real.data.datasets import get_dataset, shapes
from fake2real.data.datasets.shapes import Shapes
from fake2real.data.images import encode_image
from fake2real.data.table import SCHEMA, read_info, read_table
from fake2real.errors import ConfigError


def _config(**world):
    base = dict(train_per_group=50, val_per_group=20, test_per_group=10)
    return DatasetConfig(bias_ratio=0.9, val_floor=10, shapes=ShapesWorld(**{**base, **world}))


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    path = tmp_path_factory.mktemp("shapes") / "real"
    info = Shapes.build_real_table(_config(), path)
    return path, info


def test_prompt():
    assert shapes.prompt(0, 1) == "a disc on a cool background"
    assert shapes.prompt(1, 0) == "a square on a warm background"


def test_get_dataset():
    assert get_dataset("shapes") is Shapes
    with pytest.raises(ConfigError,
                       match="unknown dataset 'mnist' .*known: celeba, celebahq, fashion_mnist, folder, shapes, spuco_animals, utkface, waterbirds"):
        get_dataset("mnist")


def test_build_real_table_counts(small_table):
    path, info = small_table
    expected = {
        # majority (y0_b0, y1_b1) kept whole = 50; minority 50 - int(50 - 50 * 0.1 / 0.9) = ceil(5.55) = 6
        "train": {"y0_b0": 50, "y0_b1": 6, "y1_b0": 6, "y1_b1": 50},
        # majority 20; minority ceil(max(20 * 0.1 / 0.9 = 2.2, floor 10)) = 10
        "val": {"y0_b0": 20, "y0_b1": 10, "y1_b0": 10, "y1_b1": 20},
        # test is never subsampled
        "test": {"y0_b0": 10, "y0_b1": 10, "y1_b0": 10, "y1_b1": 10},
    }
    assert info.group_counts == expected
    assert info.num_rows == 112 + 60 + 40
    on_disk = read_info(path)
    assert on_disk.group_counts == expected
    assert on_disk.class_names == ["disc", "square"] and on_disk.bias_names == ["warm", "cool"]
    assert on_disk.source == "real"
    assert on_disk.extra["world"]["train_per_group"] == 50


def test_build_real_table_rows(small_table):
    path, _ = small_table
    table = read_table(path)
    assert table.schema == SCHEMA
    assert table.num_rows == 212
    assert set(table.column("g").to_pylist()) == {0}
    assert set(table.column("prompt").to_pylist()) == {None}
    ids = table.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    # Majority rows are all kept: train y0_b0 ids 000000..000049.
    assert {f"shapes-train-y0_b0-{i:06d}" for i in range(50)} <= set(ids)
    first = table.slice(ids.index("shapes-test-y1_b0-000000"), 1).to_pylist()[0]
    assert (first["y"], first["b"], first["split"]) == (1, 0, "test")
    image = Image.open(io.BytesIO(first["image"]))
    assert image.format == "PNG" and image.size == (32, 32) and image.mode == "RGB"


def test_build_real_table_is_deterministic(small_table, tmp_path):
    path, _ = small_table
    again = tmp_path / "again"
    Shapes.build_real_table(_config(), again)
    assert read_table(again).equals(read_table(path))


def test_render_is_deterministic():
    world = ShapesWorld()
    for synthetic in (False, True):
        first = encode_image(shapes.render(1, 0, 1234, world, synthetic), "png")
        second = encode_image(shapes.render(1, 0, 1234, world, synthetic), "png")
        assert first == second
    assert not np.array_equal(shapes.render(1, 0, 1234, world, False), shapes.render(1, 0, 1235, world, False))


def test_render_shape_and_dtype():
    pixels = shapes.render(0, 1, 5, ShapesWorld(image_size=48), synthetic=False)
    assert pixels.shape == (48, 48, 3) and pixels.dtype == np.uint8


def test_synthetic_render_differs_with_artifact():
    world = ShapesWorld(artifact_strength=0.08)
    for seed in range(3):
        assert not np.array_equal(shapes.render(0, 0, seed, world, False), shapes.render(0, 0, seed, world, True))


def _parity_gap(pixels: np.ndarray) -> float:
    """Mean intensity on (row + col) odd pixels minus on even ones: the checkerboard's signal."""
    rows, cols = np.indices(pixels.shape[:2])
    odd = (rows + cols) % 2 == 1
    values = pixels.astype(np.float64).mean(axis=2)
    return float(values[odd].mean() - values[~odd].mean())


def test_synthetic_artifact_is_a_checkerboard():
    world = ShapesWorld(artifact_strength=0.08)
    gaps_synthetic = [_parity_gap(shapes.render(y, y, s, world, True)) for y in (0, 1) for s in range(4)]
    gaps_real = [_parity_gap(shapes.render(y, y, s, world, False)) for y in (0, 1) for s in range(4)]
    # +0.08 on odd, -0.08 on even: a gap of 2 * 0.08 * 255 = 40.8 before clipping.
    assert min(gaps_synthetic) > 25
    assert max(abs(g) for g in gaps_real) < 5


def test_synthetic_equals_real_without_artifact_or_gap():
    world = ShapesWorld(artifact_strength=0.0, semantic_gap=0.0)
    for y, b, seed in [(0, 0, 123), (1, 0, 7), (1, 1, 99)]:
        assert np.array_equal(shapes.render(y, b, seed, world, False), shapes.render(y, b, seed, world, True))


def test_tiny_pool_keeps_one_minority_image(tmp_path):
    # The reference keeps the ceiling: 5 - int(5 - 5 * 0.01 / 0.99 = 4.95) = 1, never 0.
    config = DatasetConfig(
        bias_ratio=0.99, val_floor=10, shapes=ShapesWorld(train_per_group=5, val_per_group=20, test_per_group=2)
    )
    info = Shapes.build_real_table(config, tmp_path / "real")
    assert info.group_counts["train"] == {"y0_b0": 5, "y0_b1": 1, "y1_b0": 1, "y1_b1": 5}


def test_majority_bias_override(tmp_path):
    config = DatasetConfig(
        bias_ratio=0.9, val_floor=0, majority_bias={"disc": "cool", "square": "warm"},
        shapes=ShapesWorld(train_per_group=20, val_per_group=2, test_per_group=1),
    )
    info = Shapes.build_real_table(config, tmp_path / "real")
    # disc ↔ cool and square ↔ warm now: their minority keeps ceil(20 * 0.1 / 0.9 = 2.2) = 3.
    assert info.group_counts["train"] == {"y0_b0": 3, "y0_b1": 20, "y1_b0": 20, "y1_b1": 3}


def test_majority_bias_shared_is_refused(tmp_path):
    config = DatasetConfig(majority_bias={"disc": "warm", "square": "warm"})
    with pytest.raises(ConfigError, match=r"^config: dataset\.majority_bias: classes 'disc' and 'square' share the majority bias 'warm'"):
        Shapes.build_real_table(config, tmp_path / "real")
    assert not (tmp_path / "real").exists()


def test_stable_seed():
    assert shapes.stable_seed("a", 1) == shapes.stable_seed("a", 1)
    assert shapes.stable_seed("a", 1) != shapes.stable_seed("a", 2)
    assert 0 <= shapes.stable_seed("x") < 2**63
