"""Ingest's listing without Ray: the per-dataset majority-bias map and the reference's counts."""

from __future__ import annotations

import copy

import pytest

import native_fixtures as fixtures
from fake2real.config import build_config
from fake2real.sections import DatasetConfig
from fake2real.data.datasets import DATASETS

from fake2real.data.ingest import listing, majority_map
from fake2real.data.table import count_groups
from fake2real.errors import ConfigError, DataError

celeba, celebahq, shapes, spuco_animals, utkface, waterbirds = (
    DATASETS[name] for name in ("celeba", "celebahq", "shapes", "spuco_animals", "utkface", "waterbirds"))


def _config(name, root, **fields) -> DatasetConfig:
    return DatasetConfig(name=name, root=str(root), **fields)


@pytest.fixture(scope="module")
def celebahq_root(tmp_path_factory):
    # 400 per (Smiling, Male) group; the seeded 80/10/10 split gives (bias_ratio=None):
    # train y0_b0 324, y0_b1 324, y1_b0 313, y1_b1 320; val 26, 32, 44, 33; test 50, 44, 43, 47.
    return fixtures.celebahq(tmp_path_factory.mktemp("celebahq") / "hq", per_group=400)


def test_celebahq_opposite_majorities_and_reference_counts(celebahq_root):
    assert count_groups(listing(_config("celebahq", celebahq_root, bias_ratio=None), celebahq))["train"] == {
        "y0_b0": 324, "y0_b1": 324, "y1_b0": 313, "y1_b1": 320,
    }
    counts = count_groups(listing(_config("celebahq", celebahq_root, bias_ratio=0.99), celebahq))
    # Not smiling ↔ male (y0_b1 kept whole), smiling ↔ female (y1_b0 kept whole), as the reference;
    # the most frequent bias would have picked female for not smiling (324 = 324) and male for
    # smiling (320 > 313): no bias at all.
    # Train, base step r=0.9 rounded down, then r=0.99 rounded up:
    #   not smiling: int(324·0.1/0.9) = 35 (the reference's floats give 35.99999…), then
    #                35 − int(35 − 324·0.01/0.99 = 31.73) = 4;
    #   smiling:     int(313·0.1/0.9 = 34.78) = 34, then 34 − int(34 − 3.16 = 30.84) = 4.
    assert counts["train"] == {"y0_b0": 4, "y0_b1": 324, "y1_b0": 313, "y1_b1": 4}
    # Val: base step without floor: int(32·0.1/0.9 = 3.56) = 3 and int(44·0.1/0.9 = 4.89) = 4;
    # the floor of 10 then removes int(3 − 10) < 0, i.e. nothing.
    assert counts["val"] == {"y0_b0": 3, "y0_b1": 32, "y1_b0": 44, "y1_b1": 4}
    assert counts["test"] == {"y0_b0": 50, "y0_b1": 44, "y1_b0": 43, "y1_b1": 47}


def test_celebahq_map_override_by_name_and_index(celebahq_root):
    by_name = _config("celebahq", celebahq_root, bias_ratio=0.99, majority_bias={"smiling": "male", "not_smiling": "not_male"})
    counts = count_groups(listing(by_name, celebahq))
    # Flipped: not smiling ↔ female (324 majority): 35, then 4 as above; smiling ↔ male (320):
    # int(320·0.1/0.9 = 35.56) = 35, then 35 − int(35 − 320·0.01/0.99 = 31.77) = 4.
    assert counts["train"] == {"y0_b0": 324, "y0_b1": 4, "y1_b0": 4, "y1_b1": 320}
    by_index = _config("celebahq", celebahq_root, bias_ratio=0.99, majority_bias={1: 1, 0: 0})
    assert count_groups(listing(by_index, celebahq)) == counts


def test_map_sharing_a_bias_is_refused_in_one_line(celebahq_root):
    config = _config("celebahq", celebahq_root, bias_ratio=0.99, majority_bias={"not_smiling": "male", "smiling": "male"})
    with pytest.raises(ConfigError) as info:
        listing(config, celebahq)
    message = str(info.value)
    assert message == (
        "config: dataset.majority_bias: classes 'not_smiling' and 'smiling' share the majority bias 'male' "
        "(each class needs its own)"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"smilling": "male", "not_smiling": "not_male"}, "unknown class 'smilling' (known: not_smiling, smiling)"),
        ({"smiling": "Male", "not_smiling": "not_male"}, "unknown bias 'Male' for class 'smiling' (known: not_male, male)"),
        ({"smiling": 2, "not_smiling": 0}, "unknown bias 2 for class 'smiling'"),
        ({"smiling": "not_male"}, "class 'not_smiling' has no majority bias"),
        ({"smiling": "not_male", 1: "male", 0: "male"}, "class 'smiling' is given twice"),
        ({0: "not_male", 1: "not_male"}, "classes 'not_smiling' and 'smiling' share the majority bias 'not_male'"),
    ],
)
def test_bad_maps_are_refused(given, needle):
    with pytest.raises(ConfigError, match=r"^config: dataset\.majority_bias: ") as info:
        majority_map(_config("celeba", "/nowhere", majority_bias=given), celeba)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_map_from_yaml_override():
    config = build_config(overrides=["dataset.name=utkface", "dataset.root=/x", "dataset.majority_bias={male: old, 1: 0}"])
    assert majority_map(config.dataset, utkface) == {0: 1, 1: 0}


@pytest.mark.parametrize(
    ("module", "expected", "base"),
    [
        (celeba, {0: 1, 1: 0}, 0.9),  # not smiling ↔ male, smiling ↔ female
        (celebahq, {0: 1, 1: 0}, 0.9),
        (utkface, {0: 0, 1: 1}, 0.9),  # male ↔ young, female ↔ old
        (waterbirds, {0: 0, 1: 1}, None),  # landbird ↔ land, waterbird ↔ water
        (spuco_animals, {0: 0, 1: 1, 2: 2, 3: 3}, None),
        (shapes, {0: 0, 1: 1}, None),
    ],
)
def test_dataset_defaults(module, expected, base):
    config = _config(module.name, "/x") if module is not shapes else DatasetConfig()
    assert majority_map(config, module) == expected
    assert module.REFERENCE_BASE_RATIO == base


def test_every_dataset_declares_a_map():
    assert all(isinstance(module.MAJORITY_BIAS, dict) for module in DATASETS.values())


def test_celeba_fixture_reference_counts(tmp_path):
    root = fixtures.celeba(tmp_path / "celeba")
    counts = count_groups(listing(_config("celeba", root, bias_ratio=0.9), celeba))
    # Base step int(20·0.1/0.9 = 2.2) = 2 (6 → 2, 5 → 2); at r=0.9 the target 2.2 > 2: unchanged.
    assert counts["train"] == {"y0_b0": 2, "y0_b1": 20, "y1_b0": 20, "y1_b1": 2}
    # Val: base step int(10·0.1/0.9 = 1.1) = 1 without floor; 1.1 > 1 then keeps it.
    assert counts["val"] == {"y0_b0": 1, "y0_b1": 10, "y1_b0": 10, "y1_b1": 1}
    assert counts["test"] == {g: 3 for g in ("y0_b0", "y0_b1", "y1_b0", "y1_b1")}


def test_waterbirds_fixture_reference_counts(tmp_path):
    root = fixtures.waterbirds(tmp_path / "waterbirds")
    counts = count_groups(listing(_config("waterbirds", root, bias_ratio=0.9), waterbirds))
    # No base step: 10·0.1/0.9 = 1.1 → 2 − int(2 − 1.1) = 2 and 3 − int(3 − 1.1) = 2.
    assert counts["train"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    # Val: 2 majority → max(0.22, floor 10) > 2: all kept.
    assert counts["val"] == {g: 2 for g in ("y0_b0", "y0_b1", "y1_b0", "y1_b1")}


def test_empty_group_is_refused_in_one_line(tmp_path):
    counts = copy.deepcopy(fixtures.CELEBA_COUNTS)
    counts["train"][(1, 1)] = 0
    root = fixtures.celeba(tmp_path / "celeba", counts)
    with pytest.raises(DataError, match=r"^celeba train split at bias_ratio=0\.9: group y1_b1 is empty") as info:
        listing(_config("celeba", root, bias_ratio=0.9), celeba)
    assert "\n" not in str(info.value)


def test_other_celeba_attributes_need_their_own_map(tmp_path):
    # The default map is the reference's for Smiling/Male: for class Young it would silently
    # keep the wrong group whole, so a map must be named.
    root = fixtures.celeba(tmp_path / "celeba")
    with pytest.raises(ConfigError) as info:
        listing(_config("celeba", root, class_attribute="Young"), celeba)
    message = str(info.value)
    assert "\n" not in message and message.startswith("config: dataset.majority_bias is required") and "Young" in message
    named = _config("celeba", root, class_attribute="Young", majority_bias={"young": "not_male", "not_young": "male"})
    assert listing(named, celeba).num_rows > 0


def test_a_ratio_below_the_reference_base_step_is_refused(celebahq_root):
    # CelebA-HQ's reference protocol first cuts to 0.9: a table made "at 0.8" would be one at 0.9.
    with pytest.raises(ConfigError, match=r"^config: dataset.bias_ratio: 0.8 is below 0.9"):
        listing(_config("celebahq", celebahq_root, bias_ratio=0.8), celebahq)
    assert listing(_config("celebahq", celebahq_root, bias_ratio=0.9), celebahq).num_rows > 0
