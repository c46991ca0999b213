"""Bias-ratio subsampling (docs/protocol.md, "Data"): kept_minority, subsample_mask, check_no_empty_group."""

from __future__ import annotations

import numpy as np
import pytest

from fake2real.data.groups import apply_bias_ratio, check_no_empty_group, group_index, kept_minority, subsample_mask
from fake2real.errors import DataError

MAJORITY_BIAS = {0: 0, 1: 1}
AMPLE = 100_000  # raw minority count larger than any target: the rule alone sets the count


# The reference's published counts (mqraitem/From-Fake-to-Real, data/*_train_<r>.pkl): minority
# groups kept per class, given the class's majority count, with its base step at r=0.9.
@pytest.mark.parametrize(
    ("majority", "expected"),
    [
        # CelebA-HQ train: (not smiling, male) = 5335 → (not smiling, female) kept;
        (5335, {0.9: 592, 0.95: 281, 0.97: 166, 0.99: 54, 0.999: 6}),
        # (smiling, female) = 7797 → (smiling, male) kept.
        (7797, {0.9: 866, 0.95: 411, 0.97: 242, 0.99: 79, 0.999: 8}),
        # UTK-Face train: (male, young) = 934 → (male, old) kept;
        (934, {0.9: 103, 0.95: 50, 0.97: 29, 0.99: 10, 0.999: 1}),
        # (female, old) = 5731 → (female, young) kept.
        (5731, {0.9: 636, 0.95: 302, 0.97: 178, 0.99: 58, 0.999: 6}),
    ],
)
def test_kept_minority_matches_reference_with_base_step(majority, expected):
    # r = 0.9 keeps the base step's floor (5335·0.1/0.9 = 592.8 → 592); above, the ceiling
    # (5335·0.05/0.95 = 280.8 → 281).
    assert {r: kept_minority(majority, AMPLE, r, base_ratio=0.9) for r in expected} == expected


def test_kept_minority_base_step_floors_with_the_references_float_rounding():
    # The reference computes 1 − 0.9 = 0.09999999999999998 first: 900·that/(1 − that) is
    # 99.99999999999997, and int() keeps 99 (not 100) at the base step.
    assert kept_minority(900, AMPLE, 0.9, base_ratio=0.9) == 99
    # Below 0.9 the base step still sets the count: the data stay at 0.9.
    assert kept_minority(5335, AMPLE, 0.8, base_ratio=0.9) == 592
    # The base step has no validation floor: 40 majority → int(4.44) = 4, then the floor of 10
    # cannot add back what is gone (the reference removes int(4 − 10) < 0: nothing).
    assert kept_minority(40, AMPLE, 0.99, floor=10, base_ratio=0.9) == 4
    # A minority already under the base target is left alone.
    assert kept_minority(5335, 100, 0.9, base_ratio=0.9) == 100


@pytest.mark.parametrize(
    ("majority", "minority", "ratio", "floor", "expected"),
    [
        # SpuCo Animals train (no base step, no floor): 10000 majority, 500 minority.
        (10000, 500, 0.95, 0, 500),  # target 526.3 > 500: all kept
        (10000, 500, 0.97, 0, 310),  # 309.3 → 310
        (10000, 500, 0.99, 0, 102),  # 101.01 → 102
        (10000, 500, 0.999, 0, 11),  # 10.01 → 11
        # SpuCo Animals validation (floor 10): 500 majority, 25 minority.
        (500, 25, 0.95, 10, 25),  # 26.3 > 25: all kept
        (500, 25, 0.97, 10, 16),  # 15.46 → 16
        (500, 25, 0.99, 10, 10),  # 5.05 → floor 10
        (500, 25, 0.999, 10, 10),  # 0.5 → floor 10
        # Never more than exist: a floor above the minority count keeps them all.
        (500, 7, 0.99, 10, 7),
        (1000, 1000, 0.5, 0, 1000),  # balanced
        (5, 5, 0.99, 0, 1),  # 0.0505 → 1: the ceiling keeps one
        (0, 5, 0.9, 0, 0),
    ],
)
def test_kept_minority_without_base_step(majority, minority, ratio, floor, expected):
    assert kept_minority(majority, minority, ratio, floor) == expected


@pytest.mark.parametrize("ratio", [1.0, 0.4, 1.5, -0.1])
def test_kept_minority_rejects_ratio_out_of_range(ratio):
    with pytest.raises(DataError, match="bias_ratio"):
        kept_minority(100, 10, ratio)


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
    # majority kept whole; minority ceil(100*0.1/0.9 = 11.1) = 12 and ceil(50*0.1/0.9 = 5.6) = 6
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 12, (1, 0): 6, (1, 1): 50}
    assert keep.dtype == bool and keep.shape == (200,)
    assert keep.sum() == 168


def test_subsample_mask_counts_with_floor():
    y, b, ids = _table()
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=10, seed=0)
    # class 0 minority: ceil(max(11.1, 10)) = 12; class 1 minority: ceil(max(5.6, 10)) = 10
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 12, (1, 0): 10, (1, 1): 50}


def test_subsample_mask_floor_larger_than_available_keeps_all():
    y, b, ids = _table()
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=25, seed=0)
    # class 0 minority: max(11.1, 25) > 20: all 20; class 1 minority: max(5.6, 25) = 25
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 20, (1, 0): 25, (1, 1): 50}


def test_subsample_mask_minority_smaller_than_target_keeps_all():
    # class 0: 100 majority, only 3 minority (target 11.1); class 1: 50 majority, 30 minority (5.6 → 6)
    y = np.array([0] * 100 + [0] * 3 + [1] * 50 + [1] * 30)
    b = np.array([0] * 100 + [1] * 3 + [1] * 50 + [0] * 30)
    ids = np.array([f"r{i}" for i in range(len(y))])
    keep = subsample_mask(y, b, ids, MAJORITY_BIAS, 0.9, floor=0, seed=3)
    assert _kept_per_group(y, b, keep) == {(0, 0): 100, (0, 1): 3, (1, 0): 6, (1, 1): 50}


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
    assert keep.sum() == 168


def test_subsample_mask_higher_ratio_keeps_a_subset():
    y, b, ids = _table()
    kept = {r: set(ids[subsample_mask(y, b, ids, MAJORITY_BIAS, r, floor=0, seed=5)]) for r in (0.9, 0.95, 0.99)}
    assert kept[0.99] < kept[0.95] < kept[0.9]


def test_subsample_mask_refuses_a_class_without_majority_bias():
    y, b, ids = _table()
    with pytest.raises(DataError, match="class 1 has no majority bias"):
        subsample_mask(y, b, ids, {0: 0}, 0.9, floor=0, seed=0)


def test_apply_bias_ratio_base_step_on_train_and_val_only():
    # Per split and class: 300 majority + 300 minority (class 0 ↔ bias 0, class 1 ↔ bias 1).
    n = 300
    y = np.tile(np.repeat([0, 0, 1, 1], n), 3)
    b = np.tile(np.repeat([0, 1, 0, 1], n), 3)
    split = np.repeat(["train", "val", "test"], 4 * n)
    ids = np.array([f"r{i:05d}" for i in range(len(y))])
    keep = apply_bias_ratio(y, b, ids, split, MAJORITY_BIAS, 0.99, val_floor=10, seed=0, base_ratio=0.9)

    def counts(name):
        rows = split == name
        return _kept_per_group(y[rows], b[rows], keep[rows])

    # base: int(300·0.1/0.9 = 33.3) = 33; then ceil(300·0.01/0.99 = 3.03) = 4.
    assert counts("train") == {(0, 0): 300, (0, 1): 4, (1, 0): 4, (1, 1): 300}
    # val: 33 after the base step, then max(3.03, floor 10) → 10.
    assert counts("val") == {(0, 0): 300, (0, 1): 10, (1, 0): 10, (1, 1): 300}
    assert counts("test") == {g: 300 for g in ((0, 0), (0, 1), (1, 0), (1, 1))}


def test_check_no_empty_group_passes_when_all_present():
    check_no_empty_group({"y0_b0": 3, "y0_b1": 1}, ["y0_b0", "y0_b1"], "train")


def test_check_no_empty_group_names_zero_count_group():
    with pytest.raises(DataError, match=r"train split: group y0_b1 is empty"):
        check_no_empty_group({"y0_b0": 3, "y0_b1": 0, "y1_b0": 2}, ["y0_b0", "y0_b1", "y1_b0"], "train split")


def test_check_no_empty_group_names_missing_group():
    with pytest.raises(DataError, match="y1_b1"):
        check_no_empty_group({"y0_b0": 3, "y0_b1": 1, "y1_b0": 2}, ["y0_b0", "y0_b1", "y1_b0", "y1_b1"], "val")
