"""From config to synthetic pool and draw, without Ray: the dry run's description, biased counts,
the degradation a pool carries, one pool for every budget, a pool at ``generation.output`` made
another way, and the sweep's generation options (``check_sweep_generation``). Real tables are metadata only
(``table.json`` with train group counts, no rows)."""

from __future__ import annotations

import re

import pytest

from fake2real.config import build_config
from fake2real.data.table import TableInfo, check_writable, finalize
from fake2real.errors import ConfigError
from fake2real.entrypoints import generate_dry_run
from fake2real.prepare.pools import prepare_synthetic
from fake2real.prepare.synthetic import check_sweep_generation, synthetic_draw, synthetic_plan
from fake2real.train.mixtures import get_mixture
from fake2real.prepare.workspace import Workspace

CELEBA_CLASSES, CELEBA_BIASES = ["not_smiling", "smiling"], ["female", "male"]


def real_table(folder, train: dict[str, int]):
    """A real table's metadata: its train group counts, as ingestion records them."""
    check_writable(folder)
    return finalize(folder, TableInfo("celeba", CELEBA_CLASSES, CELEBA_BIASES, "real", group_counts={"train": train}))


@pytest.fixture
def config(make_config):
    """``config(**generation)``: CelebA's prompts and these generation fields, under the test's tmp_path."""
    return lambda **generation: make_config(generation={"prompts": "celeba", **generation})


def _counts(plan) -> dict:
    rows = plan.group_by(["y", "b"]).aggregate([("id", "count")]).to_pylist()
    return {(r["y"], r["b"]): r["id_count"] for r in rows}


def test_dry_run_lists_distinct_prompts_per_group(config):
    cfg = config(prompts="spuco_animals", images_per_group=40)
    text = generate_dry_run(cfg)
    _, plan, _ = synthetic_plan(cfg, Workspace.create(cfg))
    lines = text.splitlines()
    assert lines[0].startswith("pool ") and lines[0].endswith(": 320 images") and len(lines) == 9
    for line, (y, b) in zip(lines[1:], load_groups("spuco_animals")):
        distinct = {r["prompt"] for r in plan.to_pylist() if (r["y"], r["b"]) == (y, b)}
        match = re.fullmatch(rf"y{y}_b{b}: 40 images, (\d+) distinct prompts, e\.g\. ('[^']+'), ('[^']+'), ('[^']+')", line)
        assert match, line
        assert int(match.group(1)) == len(distinct) > 20  # 24–74 animals × 10–20 places
        assert {m.strip("'") for m in match.groups()[1:]} <= distinct


def load_groups(name):
    from fake2real.generate.prompts import load_template

    return sorted(load_template(name).all_groups())


def test_biased_counts_share_images_per_group_by_the_real_groups(tmp_path, config):
    real = real_table(tmp_path / "real", {"y0_b0": 2, "y0_b1": 8, "y1_b0": 9, "y1_b1": 1})
    cfg = config(real_table=str(real), images_per_group=100)
    workspace = Workspace.create(cfg)
    # class 0: 2 × 100 shared 2 : 8; class 1: 200 shared 9 : 1
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr_biased"))[1]) == {(0, 0): 40, (0, 1): 160, (1, 0): 180, (1, 1): 20}
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr"))[1]) == {g: 100 for g in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    # without images_per_group: ffr's budget, (9 - 2) + (9 - 8) + 0 + (9 - 1) = 16 → 4 per group, 8 per class
    cfg = config(real_table=str(real))
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr_biased"))[1]) == {(0, 0): 1, (0, 1): 6, (1, 0): 7}


def test_rebuttal_pixelate_at_severity_5_is_a_config(config):
    cfg = config(images_per_group=2, ablation_degradation={"kind": "pixelate", "severity": 5})
    workspace = Workspace.create(cfg)
    _, _, info = synthetic_plan(cfg, workspace, get_mixture("ffr_degraded"))
    assert info.extra["degradation"] == {"kind": "pixelate", "severity": 5}
    assert synthetic_plan(cfg, workspace, get_mixture("ffr"))[2].extra["degradation"] is None
    cfg = config(images_per_group=2, ablation_degradation={"kind": "reference", "severity": 5})
    assert synthetic_plan(cfg, workspace, get_mixture("ffr_degraded"))[2].extra["degradation"] == {"kind": "reference", "severity": 5}


def test_every_budget_draws_from_one_pool_and_generation_output_holds_one_pool(tmp_path, config):
    real = real_table(tmp_path / "real", {"y0_b0": 2, "y0_b1": 30, "y1_b0": 30, "y1_b1": 4})
    output = tmp_path / "celeba-sd"
    cfg = config(real_table=str(real), output=str(output))
    workspace = Workspace.create(cfg)
    ffr = synthetic_draw(cfg, workspace, get_mixture("ffr"))
    usb = synthetic_draw(cfg, workspace, get_mixture("usb"))
    # usb fills 28 + 26 into the two small groups; ffr spreads the same 54 as 13 per group
    assert usb.counts == {(0, 0): 28, (1, 1): 26} and ffr.counts == {g: 13 for g in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    assert ffr.pool.id == usb.pool.id == synthetic_draw(cfg, workspace, get_mixture("asb")).pool.id
    assert ffr.id != usb.id  # two draws of one pool
    degraded = synthetic_draw(cfg, workspace, get_mixture("ffr_degraded")).pool
    assert degraded.id != ffr.pool.id  # images made another way: another pool
    assert str(ffr.pool.location) == str(output) == str(degraded.location)

    check_writable(output)
    finalize(output, ffr.pool.info)  # a finished pool (its rows do not matter here)
    with pytest.raises(ConfigError) as error:
        prepare_synthetic(cfg, workspace, get_mixture("ffr_degraded"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("config: generation.output: ")
    assert str(output) in message and f"pool {ffr.pool.id}" in message and f"pool {degraded.id}" in message


# --- check_sweep_generation ---------------------------------------------------------------


def sweep_config(**generation):
    return build_config(overrides={"generation": generation})


def test_sweep_generation_settings_that_serve_every_cell_pass():
    check_sweep_generation(sweep_config(), ["none", "usb", "asb", "ffr", "ffr_biased", "ffr_degraded"])
    check_sweep_generation(sweep_config(output="/data/sd"), ["none", "ffr"])
    # budgets and bias ratios are counts: every one draws from the one pool
    check_sweep_generation(sweep_config(output="/data/sd"), ["usb", "asb", "ffr", "ffr_biased", "synthetic_only", "ffr_reversed"])
    check_sweep_generation(sweep_config(counts_from="ffr"), ["none", "ffr", "ffr_degraded"])
    check_sweep_generation(sweep_config(output="/data/sd"), ["none"])  # nothing synthetic


@pytest.mark.parametrize("mixtures", [["ffr", "ffr_unbalanced"], ["usb", "ffr_degraded"]])
def test_sweep_output_for_several_pools_is_refused(mixtures):
    with pytest.raises(ConfigError) as error:
        check_sweep_generation(sweep_config(output="/data/sd"), ["none", *mixtures])
    message = str(error.value)
    assert "\n" not in message and message.startswith("config: generation.output: one folder holds one synthetic pool")
    assert "bias words or degradation" in message


@pytest.mark.parametrize(
    "counts_from, mixtures, named",
    [("ffr", ["ffr", "usb"], "'usb' the 'ffr' budget instead of its own 'usb'"),
     ("usb", ["ffr_degraded"], "'ffr_degraded' the 'usb' budget instead of its own 'ffr'"),
     ("ffr", ["ffr_biased"], "'ffr_biased' the 'ffr' budget instead of its own 'biased'")],
)
def test_sweep_counts_from_another_rule_is_refused(counts_from, mixtures, named):
    with pytest.raises(ConfigError) as error:
        check_sweep_generation(sweep_config(counts_from=counts_from), mixtures)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"config: generation.counts_from={counts_from} ") and named in message
