"""Mixtures: USB budget and the FFR synthetic counts."""

from __future__ import annotations

import pytest

from fake2real.errors import ConfigError
from fake2real.train.mixtures import MIXTURES, get_mixture, usb_budget

COUNTS = {(0, 0): 54, (0, 1): 5335, (1, 0): 7797, (1, 1): 79}


def test_usb_budget():
    # (7797 - 54) + (7797 - 5335) + 0 + (7797 - 79) = 7743 + 2462 + 0 + 7718 = 17923
    assert usb_budget(COUNTS) == 17923
    assert usb_budget({(0, 0): 5, (0, 1): 5}) == 0


def test_ffr_synthetic_counts():
    # 17923 // 4 = 4480 per group
    assert get_mixture("ffr").synthetic_counts(COUNTS) == {(0, 0): 4480, (0, 1): 4480, (1, 0): 4480, (1, 1): 4480}


def test_none_needs_no_synthetic():
    mixture = get_mixture("none")
    assert not mixture.needs_synthetic
    assert mixture.synthetic_counts(COUNTS) == {}
    assert [(s.name, s.data, s.method, s.init_from_previous) for s in mixture.stages] == [("real", "real", None, False)]


def test_ffr_stages():
    mixture = get_mixture("ffr")
    assert mixture.needs_synthetic
    assert [(s.name, s.data, s.method, s.init_from_previous) for s in mixture.stages] == [
        ("stage1_synthetic", "synthetic", "erm", False),
        ("stage2_real", "real", None, True),
    ]


def test_ffr_on_balanced_table_raises():
    with pytest.raises(ConfigError, match="USB budget is 0 synthetic images"):
        get_mixture("ffr").synthetic_counts({(0, 0): 10, (0, 1): 10, (1, 0): 10, (1, 1): 10})


def test_ffr_budget_below_one_per_group_raises():
    # budget (10 - 9) = 1, 1 // 4 = 0 per group
    with pytest.raises(ConfigError, match="USB budget is 1 synthetic images, fewer than one per group for 4 groups"):
        get_mixture("ffr").synthetic_counts({(0, 0): 10, (0, 1): 9, (1, 0): 10, (1, 1): 10})


def test_get_mixture_unknown():
    assert set(MIXTURES) == {"none", "ffr"}
    with pytest.raises(ConfigError, match=r"unknown mixture 'nope' \(known: ffr, none\)"):
        get_mixture("nope")


def test_count_rules_on_the_issue_table():
    from fake2real.train.mixtures import synthetic_counts

    counts = {(0, 0): 54, (0, 1): 5335, (1, 0): 7797, (1, 1): 79}
    usb = synthetic_counts("usb", counts)
    # Each group up to 7797; the largest group gets none and is left out of the plan.
    assert usb == {(0, 0): 7743, (0, 1): 2462, (1, 1): 7718}
    assert sum(usb.values()) == 17923
    assert synthetic_counts("asb", counts) == {g: 4480 for g in counts}
    assert synthetic_counts("ffr", counts) == {g: 4480 for g in counts}
    with pytest.raises(ConfigError, match="unknown synthetic count rule 'mix'"):
        synthetic_counts("mix", counts)
    with pytest.raises(ConfigError, match="USB budget is 0"):
        synthetic_counts("usb", {(0, 0): 5, (0, 1): 5})
