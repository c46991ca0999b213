"""Bias-ratio subsampling (DESIGN §2): minority_target, subsample_mask, check_no_empty_group."""

from __future__ import annotations

import numpy as np
import pytest

from fake2real.data.groups import check_no_empty_group, group_index, minority_target, subsample_mask
from fake2real.errors import DataError

MAJORITY_BIAS = {0: 0, 1: 1}


@pytest.mark.parametrize(
    ("majority", "ratio", "expected"),
    [
        (1000, 0.99, 10),  # 1000 * 0.01 / 0.99 = 10.10 -> 10
        (1000, 0.95, 52),  # 1000 * 0.05 / 0.95 = 52.63 -> 52
        (900, 0.9, 100),  # 900 * 0.1 / 0.9 = 100 exactly (must not round down to 99)
        (100, 0.9, 11),  # 11.11 -> 11
        (50, 0.9, 5),  # 5.55 -> 5
        (1000, 0.5, 1000),  # balanced: 1000 * 0.5 / 0.5
        (5, 0.99, 0),  # 0.0505 -> 0
        (0, 0.9, 0),
    ],
)
def test_minority_target(majority, ratio, expected):
    assert minority_target(majority, ratio) == expected


@pytest.mark.parametrize("ratio", [1.0, 0.4, 1.5, -0.1])
def test_minority_target_rejects_ratio_out_of_range(ratio):
    with pytest.raises(DataError, match="bias_ratio"):
        minority_target(100, ratio)


def test_group_index():
    # y * num_biases + b with 2 biases: (0,0)->0 (0,1)->1 (1,0)->2 (1,1)->3
    assert group_index(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), 2).tolist() == [0, 1, 2, 3]
    assert group_index(np.array([2]), np.array([1]), 3).tolist() == [7]


def _table():
    """class 0: 100 majority (b=0) + 20 minority (b=1); class 1: 50 majority (b=1) + 30 minority (b=0)."""
    y = np.array([0] * 100 + [0] * 20 + [1] * 50 + [1] * 30)
    b = np.array([0] * 100 + [1] * 20 + [1] * 50 + [0] * 30)
    ids = np.array([f"row-{i:04d}" for i in range(len(y))])
    return y, b, ids


def _kept_per_group(y, b, keep):
    return {(yy, bb): int((keep & (y == yy) & (b == bb)).sum()) for yy in (0, 1) for bb in (0, 1)}


def test_subsample_mask_counts_without_floor():
    y, b, ids = _table()
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=0)
    # majority kept whole; minority floor(100*0.1/0.9)=11 and floor(50*0.1/0.9)=5
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 11, (1, 0): 5, (1, 1): 50}
    assert keep.dtype == bool and keep.shape == (200,)
    assert keep.sum() == 166


def test_subsample_mask_counts_with_floor():
    y, b, ids = _table()
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=10, seed=0)
    # class 0 minority: max(11, min(10, 20)) = 11; class 1 minority: max(5, min(10, 30)) = 10
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 11, (1, 0): 10, (1, 1): 50}


def test_subsample_mask_floor_larger_than_available_keeps_all():
    y, b, ids = _table()
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=25, seed=0)
    # class 0 minority: min(25, 20) = 20 (all); class 1 minority: min(25, 30) = 25
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 20, (1, 0): 25, (1, 1): 50}


def test_subsample_mask_minority_smaller_than_target_keeps_all():
    # class 0: 100 majority, only 3 minority (target 11); class 1: 50 majority, 30 minority (target 5)
    y = np.array([0] * 100 + [0] * 3 + [1] * 50 + [1] * 30)
    b = np.array([0] * 100 + [1] * 3 + [1] * 50 + [0] * 30)
    ids = np.array([f"r{i}" for i in range(len(y))])
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=3)
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 3, (1, 0): 5, (1, 1): 50}


def test_subsample_mask_independent_of_row_order():
    y, b, ids = _table()
    kept = set(ids[subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=10, seed=7)])
    for shuffle_seed in range(3):
        order = np.random.default_rng(shuffle_seed).permutation(len(y))
        keep = subsample_mask(y[order], b[order], ids[order], MAJORITY_BIAS, 0.9, floor=10, seed=7)
        assert set(ids[order][keep]) == kept


def test_subsample_mask_deterministic_for_a_seed():
    y, b, ids = _table()
    first = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=11)
    second = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=11)
    assert np.array_equal(first, second)
    # Another seed picks another minority subset (same counts).
    other = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=12)
    assert other.sum() == first.sum()
    assert not np.array_equal(first, other)


def test_subsample_mask_accepts_lists():
    y, b, ids = _table()
    keep = subsample_mask(y.tolist(), b.tolist(), ids.tolist(), MAJORITY_BIAS, 0.9, floor=0, seed=0)
    assert keep.sum() == 166


def test_check_no_empty_group_passes_when_all_present():
    check_no_empty_group({"y0_b0": 3, "y0_b1": 1}, ["y0_b0", "y0_b1"], "train")


def test_check_no_empty_group_names_zero_count_group():
    with pytest.raises(DataError, match=r"train split: group y0_b1 is empty"):
        check_no_empty_group({"y0_b0": 3, "y0_b1": 0, "y1_b0": 2}, ["y0_b0", "y0_b1", "y1_b0"], "train split")


def test_check_no_empty_group_names_missing_group():
    with pytest.raises(DataError, match="y1_b1"):
        check_no_empty_group({"y0_b0": 3, "y0_b1": 1, "y1_b0": 2}, ["y0_b0", "y0_b1", "y1_b0", "y1_b1"], "val")
