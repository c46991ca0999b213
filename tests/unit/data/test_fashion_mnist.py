"""The Fashion-MNIST benchmark's dataset: its native files, the tint rule, who sees which image."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import native_fixtures
from fake2real.config import build_config
from fake2real.data.datasets import fashion_mnist, get_dataset
from fake2real.data.datasets.fashion_mnist import FashionMnist
from fake2real.data.images import decode_rgb
from fake2real.data.table import count_groups, read_info, read_table
from fake2real.errors import ConfigError, DataError
from fake2real.seeding import stable_seed


@pytest.fixture
def root(tmp_path):
    fashion_mnist.read_native.cache_clear()
    yield str(native_fixtures.fashion_mnist(tmp_path / "fashion"))
    fashion_mnist.read_native.cache_clear()


def _config(root, **world):
    world = {"val_per_group": 5, "test_per_group": 8, **world}
    return build_config(overrides={"dataset": {"name": "fashion_mnist", "root": root, "bias_ratio": 0.9, "fashion_mnist": world}}).dataset


def test_registered_with_the_debian_folder_as_its_default_root():
    assert get_dataset("fashion_mnist") is FashionMnist
    config = build_config(overrides=["dataset.name=fashion_mnist"]).dataset  # no root needed
    assert config.root is None and fashion_mnist.root_of(config) == "/usr/share/datasets/fashion-mnist"


def test_the_tint_keeps_the_garment_and_colours_the_background():
    gray = np.zeros((28, 28), dtype=np.uint8)
    gray[10, 10] = 255
    image = fashion_mnist.tint(gray, 1)
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    assert image[12, 12].tolist() == [255, 255, 255]  # opaque garment pixel, padded by 2
    assert image[0, 0].tolist() == [int(255 * c + 0.5) for c in fashion_mnist.TINTS[1]]


def test_every_image_gets_its_bias_by_the_documented_rule(root):
    config = _config(root)
    rows = FashionMnist.listing(config)
    for row_id, b in zip(rows["id"].to_pylist(), rows["b"].to_pylist()):
        _, file, index = row_id.rsplit("-", 2)
        assert b == stable_seed("fashion_mnist", config.split_seed, file, int(index)) % 2


def test_splits_ratio_on_train_only_and_balanced_evaluation(root):
    config = _config(root)
    counts = count_groups(FashionMnist.listing(config))
    assert counts["val"] == {"y0_b0": 5, "y0_b1": 5, "y1_b0": 5, "y1_b1": 5}
    assert counts["test"] == {"y0_b0": 8, "y0_b1": 8, "y1_b0": 8, "y1_b1": 8}
    train = counts["train"]
    # Class 0's majority is warm (b0), class 1's cool (b1); each minority is cut by the reference's
    # rule to the ceiling of majority · (1 − r) / r.
    assert train["y0_b1"] == int(np.ceil(train["y0_b0"] * 0.1 / 0.9 - 1e-9))
    assert train["y1_b0"] == int(np.ceil(train["y1_b1"] * 0.1 / 0.9 - 1e-9))


def test_the_generator_never_sees_a_benchmark_image(root):
    config = _config(root)
    benchmark = set(FashionMnist.listing(config)["id"].to_pylist())
    held = fashion_mnist.held_apart_rows(config)
    assert not benchmark & set(held["id"].to_pylist())
    assert all(i.startswith("fashion_mnist-train-") for i in held["id"].to_pylist())  # never the test file
    counts = count_groups(held)["train"]
    assert len(set(counts.values())) == 1 and len(counts) == 4  # group-balanced
    # The held-apart images do not depend on the bias ratio: one generator for every ratio.
    other = build_config(overrides={"dataset": {"name": "fashion_mnist", "root": root, "bias_ratio": 0.99,
                                                "fashion_mnist": {"val_per_group": 5, "test_per_group": 8}}}).dataset
    assert FashionMnist.held_apart_key(other) == FashionMnist.held_apart_key(config)
    assert fashion_mnist.held_apart_rows(other).equals(held)


def test_the_tables_hold_the_tinted_images(root, tmp_path):
    config = _config(root, train_per_group=10)
    info = FashionMnist.build_real_table(config, tmp_path / "real")
    assert info.class_names == ["pullover", "coat"] and info.bias_names == ["warm", "cool"]
    table = read_table(tmp_path / "real")
    assert max(count_groups(table)["train"].values()) == 10
    first = table.slice(0, 1).to_pylist()[0]
    _, file, index = first["id"].rsplit("-", 2)
    expected = fashion_mnist.tint(fashion_mnist.read_native(root)[file][0][int(index)], first["b"])
    assert np.array_equal(decode_rgb(first["image"]).permute(1, 2, 0).numpy(), expected)
    held = FashionMnist.held_apart_table(config, tmp_path / "held")
    assert read_info(tmp_path / "held").source == "real" and set(held.group_counts) == {"train"}


def test_splits_are_stable_and_depend_on_the_split_seed(root):
    assert FashionMnist.listing(_config(root)).equals(FashionMnist.listing(_config(root)))
    moved = build_config(overrides={"dataset": {"name": "fashion_mnist", "root": root, "split_seed": 1,
                                                "fashion_mnist": {"val_per_group": 5, "test_per_group": 8}}}).dataset
    assert set(FashionMnist.listing(moved)["id"].to_pylist()) != set(FashionMnist.listing(_config(root))["id"].to_pylist())


def test_missing_files_name_the_package_to_install(tmp_path):
    fashion_mnist.read_native.cache_clear()
    with pytest.raises(DataError, match=r"^dataset.root: no folder at .*install it with: apt-get install dataset-fashion-mnist\)$"):
        FashionMnist.listing(_config(str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no Fashion-MNIST file .*train-images-idx3-ubyte.gz \(install it with: apt-get install"):
        FashionMnist.listing(_config(str(tmp_path / "empty")))


def test_a_corrupt_file_is_one_line(root):
    path = f"{root}/t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02")  # says 5 labels, holds 2
    fashion_mnist.read_native.cache_clear()
    with pytest.raises(DataError, match=r"^dataset.root: .*t10k-labels-idx1-ubyte.gz is not an IDX file of 1 dimension\(s\)"):
        FashionMnist.listing(_config(root))
    with open(path, "wb") as out:
        out.write(b"not gzip at all")
    fashion_mnist.read_native.cache_clear()
    with pytest.raises(DataError, match="is not a readable gzip file"):
        FashionMnist.listing(_config(root))


def test_too_few_test_images_name_the_group(root):
    with pytest.raises(DataError, match=r"group y0_b\d \(pullover, (warm|cool)\) has \d+ test-file images; val_per_group \+ test_per_group = 200"):
        FashionMnist.listing(_config(root, val_per_group=100, test_per_group=100))


def test_class_names_are_checked_as_the_config_is_read():
    with pytest.raises(ConfigError, match=r"^config: dataset.fashion_mnist.classes: unknown class 'jacket' \(known: t-shirt, trouser"):
        build_config(overrides=["dataset.name=fashion_mnist", "dataset.fashion_mnist.classes=[pullover,jacket]"])
    with pytest.raises(ConfigError, match="needs at least 2 distinct classes"):
        build_config(overrides=["dataset.name=fashion_mnist", "dataset.fashion_mnist.classes=[coat,coat]"])
