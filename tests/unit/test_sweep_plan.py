"""The sweep's dry run without Ray: what it counts, its cost arithmetic, and that it writes nothing.
(That its counts equal what a sweep then does: tests/integration/test_methods_mixtures.py.)"""

from __future__ import annotations

import re

import pytest

from fake2real.config import build_config
from fake2real.cost import MEASURED, rates
from fake2real.sweep import sweep_dry_run


def config(tmp_path, *overrides):
    return build_config(overrides=[f"output_dir={tmp_path / 'out'}", *overrides])


def test_the_quick_sweep_plan_without_any_work(tmp_path):
    text = sweep_dry_run(config(tmp_path))  # none/ffr × erm/groupdro, r = 0.99, one seed
    assert not (tmp_path / "out").exists()  # nothing written, no Ray started
    # r = 0.99 of 1000 per group: 1000 majority and ceil(1000 · 0.01 / 0.99) = 11 minority
    assert "train y0_b0 1000, y0_b1 11, y1_b0 11, y1_b1 1000)" in text
    # ffr's budget: (1000 − 11) · 2 = 1978 → 494 per group; the test pool: 100 per group
    assert re.search(r"pool-shapes-\w+ \(procedural, train\): holds 0, must add 1976", text)
    assert re.search(r"pool-test-shapes-\w+ \(procedural, test\): holds 0, must add 400", text)
    # real × 2 methods, FFR's stage 1 once (shared), FFR's stage 2 × 2 methods
    assert "stages to train after sharing: 5 (2 real, 1 stage1_synthetic, 2 stage2_real)" in text
    assert "search trials" not in text


def test_budgets_share_one_pool_sized_to_the_largest_draw(tmp_path):
    text = sweep_dry_run(config(tmp_path, "sweep.mixtures=[usb,asb,ffr]", "sweep.methods=[erm]", "sweep.bias_ratios=[0.95,0.99]",
                                "generation.test_images_per_group=0"))
    pools = re.findall(r"pool-shapes-\w+ \(procedural, train\): holds 0, must add (\d+)", text)
    # usb at 0.99 fills each minority group with 989; ffr/asb at 0.99 take 494 of every group.
    assert pools == [str(989 * 2 + 494 * 2)]
    assert "y0_b1: holds 0, needs 989, adds 989" in text and "y0_b0: holds 0, needs 494, adds 494" in text


def test_cost_in_device_hours_from_the_configured_rates(tmp_path):
    text = sweep_dry_run(config(tmp_path, "sweep.cost.generation_images_per_second=0.5", "sweep.cost.training_images_per_second=100",
                                "sweep.search.num_samples=3"))
    generated = int(re.search(r"images to generate: (\d+);", text).group(1))
    passes = int(re.search(r"image passes to train and evaluate: (\d+)", text).group(1))
    assert generated == 1976 + 400
    assert f"generation: {generated / 0.5 / 3600:.2f} device-hours at 0.5 images/s (sweep.cost.generation_images_per_second)" in text
    assert f"training: {passes / 100 / 3600:.2f} device-hours at 100 images/s" in text
    assert "search trials: 12 (3 per searched cell" in text
    assert re.search(r"estimated total: [\d.]+ device-hours", text)


def test_a_generator_without_a_measured_rate_is_unknown_not_guessed(tmp_path):
    cfg = config(tmp_path, "generation.backend=diffusers", "generation.model=/models/sd", "generation.device=cuda")
    found = rates(cfg)
    assert ("generation", "diffusers", "gpu") not in MEASURED and found.generation is None
    assert found.generation_source == "no measured rate for diffusers on gpu"


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_measured_rates_are_positive(key):
    assert MEASURED[key] > 0
