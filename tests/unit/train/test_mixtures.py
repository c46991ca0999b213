"""Mixtures: USB budget and the FFR synthetic counts."""

from __future__ import annotations

import pytest

from fake2real.errors import ConfigError
from fake2real.train.mixtures import MIXTURES, get_mixture, synthetic_counts, usb_budget

COUNTS = {(0, 0): 54, (0, 1): 5335, (1, 0): 7797, (1, 1): 79}


def test_usb_budget():
    # (7797 - 54) + (7797 - 5335) + 0 + (7797 - 79) = 7743 + 2462 + 0 + 7718 = 17923
    assert usb_budget(COUNTS) == 17923
    assert usb_budget({(0, 0): 5, (0, 1): 5}) == 0


def test_ffr_synthetic_counts():
    # 17923 // 4 = 4480 per group
    assert synthetic_counts(get_mixture("ffr").count_rule, COUNTS) == {(0, 0): 4480, (0, 1): 4480, (1, 0): 4480, (1, 1): 4480}


def test_none_needs_no_synthetic():
    mixture = get_mixture("none")
    assert not mixture.needs_synthetic
    assert mixture.count_rule is None
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
        synthetic_counts(get_mixture("ffr").count_rule, {(0, 0): 10, (0, 1): 10, (1, 0): 10, (1, 1): 10})


def test_ffr_budget_below_one_per_group_raises():
    # budget (10 - 9) = 1, 1 // 4 = 0 per group
    with pytest.raises(ConfigError, match="USB budget is 1 synthetic images, fewer than one per group for 4 groups"):
        synthetic_counts(get_mixture("ffr").count_rule, {(0, 0): 10, (0, 1): 9, (1, 0): 10, (1, 1): 10})


def test_get_mixture_unknown():
    known = "asb, ffr, ffr_biased, ffr_degraded, ffr_reversed, ffr_unbalanced, none, synthetic_only, usb"
    assert ", ".join(sorted(MIXTURES)) == known
    with pytest.raises(ConfigError, match=rf"unknown mixture 'nope' \(known: {known}\)"):
        get_mixture("nope")


def _stages(name):
    return [(s.name, s.data, s.method, s.init_from_previous) for s in get_mixture(name).stages]


def test_usb_and_asb_mix_real_and_synthetic_in_one_stage():
    for name in ("usb", "asb"):
        assert _stages(name) == [("mixed", "mixed", None, False)]
        assert get_mixture(name).count_rule == name
    # usb fills each group up to 7797 (the largest group gets none); asb spreads the same 17,923
    assert synthetic_counts(get_mixture("usb").count_rule, COUNTS) == {(0, 0): 7743, (0, 1): 2462, (1, 1): 7718}
    assert synthetic_counts(get_mixture("asb").count_rule, COUNTS) == {g: 4480 for g in COUNTS}


def test_ablations():
    # real first with the method (the very stage of 'none', so it is shared), then synthetic ERM
    assert _stages("ffr_reversed") == [("real", "real", None, False), ("stage2_synthetic", "synthetic", "erm", True)]
    assert _stages("ffr_reversed")[0] == _stages("none")[0]
    # FFR's stages on other synthetic data: without bias words, or degraded
    for name in ("ffr_unbalanced", "ffr_degraded"):
        assert _stages(name) == _stages("ffr")
    assert not get_mixture("ffr_unbalanced").bias_words and get_mixture("ffr").bias_words
    assert get_mixture("ffr_degraded").degrade and not get_mixture("ffr").degrade
    # the method on FFR's synthetic data alone; named like FFR's stage 1 so ERM's is shared
    assert _stages("synthetic_only") == [("stage1_synthetic", "synthetic", None, False)]
    for name in ("ffr_reversed", "ffr_unbalanced", "synthetic_only", "ffr_degraded"):
        assert synthetic_counts(get_mixture(name).count_rule, COUNTS) == {g: 4480 for g in COUNTS}


def test_count_rules_on_the_issue_table():

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


def test_biased_rule_keeps_the_real_bias_proportions_within_each_class():
    from fake2real.train.mixtures import COUNT_RULES

    assert "biased" in COUNT_RULES
    # ffr's budget: 17923 // 4 = 4480 per group, 8960 per class (2 groups), shared as the real data:
    # class 0 (54 + 5335 = 5389): 8960·54 // 5389 = 89, 8960·5335 // 5389 = 8870
    # class 1 (7797 + 79 = 7876): 8960·7797 // 7876 = 8870, 8960·79 // 7876 = 89
    # (the reference: int(num_per_group * 2 * share) = int(89.78) = 89, int(8870.2) = 8870, …)
    assert synthetic_counts("biased", COUNTS) == {(0, 0): 89, (0, 1): 8870, (1, 0): 8870, (1, 1): 89}
    assert sum(synthetic_counts("biased", COUNTS).values()) <= sum(synthetic_counts("ffr", COUNTS).values()) == 17920


def test_biased_rule_counts_each_class_by_its_own_groups():

    # usb budget: (100 - 10) + (100 - 30) + (100 - 60) + 0 + (100 - 0) = 300, 60 per group.
    # class 0 has 3 groups: 180 shared 10 : 30 : 60 → 18, 54, 108; class 1 has 2: 120 to its only real group.
    counts = {(0, 0): 10, (0, 1): 30, (0, 2): 60, (1, 0): 100, (1, 1): 0}
    assert synthetic_counts("biased", counts) == {(0, 0): 18, (0, 1): 54, (0, 2): 108, (1, 0): 120}
    with pytest.raises(ConfigError, match="USB budget is 0"):
        synthetic_counts("biased", {(0, 0): 5, (0, 1): 5})


def test_ffr_biased_is_ffr_on_real_proportioned_synthetic_data():
    mixture = get_mixture("ffr_biased")
    assert _stages("ffr_biased") == _stages("ffr")
    assert mixture.count_rule == "biased" and mixture.bias_words and not mixture.degrade
    assert synthetic_counts(mixture.count_rule, COUNTS) == {(0, 0): 89, (0, 1): 8870, (1, 0): 8870, (1, 1): 89}
