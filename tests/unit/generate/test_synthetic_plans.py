"""From config to synthetic plan, without Ray: the dry run's description, biased counts, the
degradation a plan carries, a table at ``generation.output`` that was made for another plan,
and the sweep's generation options (``check_sweep_generation``). Real tables are metadata only
(``table.json`` with train group counts, no rows)."""

from __future__ import annotations

import re

import pytest

from fake2real.config import build_config
from fake2real.data.table import TableInfo, check_writable, finalize, read_info
from fake2real.errors import ConfigError
from fake2real.synthetic import check_sweep_generation, prepare_synthetic, run_generation_job, synthetic_plan
from fake2real.train.mixtures import get_mixture
from fake2real.workspace import Workspace

CELEBA_CLASSES, CELEBA_BIASES = ["not_smiling", "smiling"], ["female", "male"]


def real_table(folder, train: dict[str, int]):
    """A real table's metadata: its train group counts, as ingestion records them."""
    check_writable(folder)
    return finalize(folder, TableInfo("celeba", CELEBA_CLASSES, CELEBA_BIASES, "real", group_counts={"train": train}))


def config(tmp_path, **generation):
    return build_config(overrides={"output_dir": str(tmp_path / "out"), "generation": {"prompts": "celeba", **generation}})


def _counts(plan) -> dict:
    rows = plan.group_by(["y", "b"]).aggregate([("id", "count")]).to_pylist()
    return {(r["y"], r["b"]): r["id_count"] for r in rows}


def test_dry_run_lists_distinct_prompts_per_group(tmp_path):
    cfg = config(tmp_path, prompts="spuco_animals", images_per_group=40)
    text = run_generation_job(cfg, dry_run=True)
    _, plan, _ = synthetic_plan(cfg, Workspace.create(cfg))
    lines = text.splitlines()
    assert lines[0].endswith(": 320 images") and len(lines) == 9
    for line, (y, b) in zip(lines[1:], load_groups("spuco_animals")):
        distinct = {r["prompt"] for r in plan.to_pylist() if (r["y"], r["b"]) == (y, b)}
        match = re.fullmatch(rf"y{y}_b{b}: 40 images, (\d+) distinct prompts, e\.g\. ('[^']+'), ('[^']+'), ('[^']+')", line)
        assert match, line
        assert int(match.group(1)) == len(distinct) > 20  # 24–74 animals × 10–20 places
        assert {m.strip("'") for m in match.groups()[1:]} <= distinct


def load_groups(name):
    from fake2real.generate.prompts import load_template

    return sorted(load_template(name).all_groups())


def test_biased_counts_share_images_per_group_by_the_real_groups(tmp_path):
    real = real_table(tmp_path / "real", {"y0_b0": 2, "y0_b1": 8, "y1_b0": 9, "y1_b1": 1})
    cfg = config(tmp_path, real_table=str(real), images_per_group=100)
    workspace = Workspace.create(cfg)
    # class 0: 2 × 100 shared 2 : 8; class 1: 200 shared 9 : 1
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr_biased"))[1]) == {(0, 0): 40, (0, 1): 160, (1, 0): 180, (1, 1): 20}
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr"))[1]) == {g: 100 for g in [(0, 0), (0, 1), (1, 0), (1, 1)]}
    # without images_per_group: ffr's budget, (9 - 2) + (9 - 8) + 0 + (9 - 1) = 16 → 4 per group, 8 per class
    cfg = config(tmp_path, real_table=str(real))
    assert _counts(synthetic_plan(cfg, workspace, get_mixture("ffr_biased"))[1]) == {(0, 0): 1, (0, 1): 6, (1, 0): 7}


def test_rebuttal_pixelate_at_severity_5_is_a_config(tmp_path):
    cfg = config(tmp_path, images_per_group=2, ablation_degradation={"kind": "pixelate", "severity": 5})
    workspace = Workspace.create(cfg)
    _, _, info = synthetic_plan(cfg, workspace, get_mixture("ffr_degraded"))
    assert info.extra["degradation"] == {"kind": "pixelate", "severity": 5}
    assert synthetic_plan(cfg, workspace, get_mixture("ffr"))[2].extra["degradation"] is None
    cfg = config(tmp_path, images_per_group=2, ablation_degradation={"kind": "reference", "severity": 5})
    assert synthetic_plan(cfg, workspace, get_mixture("ffr_degraded"))[2].extra["degradation"] == {"kind": "reference", "severity": 5}


def test_a_table_at_generation_output_is_used_only_for_its_own_plan(tmp_path):
    real = real_table(tmp_path / "real", {"y0_b0": 2, "y0_b1": 30, "y1_b0": 30, "y1_b1": 4})
    output = tmp_path / "celeba-sd"
    cfg = config(tmp_path, real_table=str(real), output=str(output))
    workspace = Workspace.create(cfg)
    ffr_id, _, info = synthetic_plan(cfg, workspace, get_mixture("ffr"))
    usb_id, _, _ = synthetic_plan(cfg, workspace, get_mixture("usb"))
    assert ffr_id != usb_id
    assert synthetic_plan(cfg, workspace, get_mixture("asb"))[0] == ffr_id  # asb's budget is ffr's: one plan
    check_writable(output)
    finalize(output, info)  # a finished table of ffr's plan (its rows do not matter here)
    assert read_info(output).extra["plan_id"] == ffr_id

    assert str(prepare_synthetic(cfg, workspace, get_mixture("ffr"))) == str(output)
    with pytest.raises(ConfigError) as error:
        prepare_synthetic(cfg, workspace, get_mixture("usb"))
    message = str(error.value)
    assert "\n" not in message and message.startswith("config: generation.output: ")
    assert str(output) in message and f"plan {ffr_id}" in message and f"plan {usb_id}" in message


# --- check_sweep_generation ---------------------------------------------------------------


def sweep_config(**generation):
    return build_config(overrides={"generation": generation})


def test_sweep_generation_settings_that_serve_every_cell_pass():
    check_sweep_generation(sweep_config(), ["none", "usb", "asb", "ffr", "ffr_biased", "ffr_degraded"], [0.9, 0.99])
    check_sweep_generation(sweep_config(output="/data/sd"), ["none", "ffr"], [0.99])
    # the same plan for every cell: ffr's stages share asb's budget, one ratio
    check_sweep_generation(sweep_config(output="/data/sd"), ["asb", "ffr", "synthetic_only", "ffr_reversed"], [0.95])
    # fixed counts do not change with the ratio or the rule
    check_sweep_generation(sweep_config(output="/data/sd", images_per_group=100), ["usb", "ffr"], [0.9, 0.99])
    # one real table sizes every ratio
    check_sweep_generation(sweep_config(output="/data/sd", real_table="/data/real"), ["ffr"], [0.9, 0.99])
    check_sweep_generation(sweep_config(counts_from="ffr"), ["none", "ffr", "ffr_degraded"], [0.9, 0.99])
    check_sweep_generation(sweep_config(output="/data/sd"), ["none"], [0.9, 0.99])  # nothing synthetic


@pytest.mark.parametrize(
    "generation, mixtures, ratios, says",
    [
        ({"output": "/data/sd"}, ["usb", "ffr"], [0.99], "budgets ffr, usb"),
        ({"output": "/data/sd"}, ["ffr", "ffr_biased"], [0.99], "budgets biased, ffr"),
        ({"output": "/data/sd", "images_per_group": 100}, ["ffr", "ffr_biased"], [0.99], "budgets biased, images_per_group"),
        ({"output": "/data/sd"}, ["ffr"], [0.9, 0.99], "bias ratios 0.9, 0.99"),
        ({"output": "/data/sd", "images_per_group": 100}, ["ffr", "ffr_unbalanced"], [0.99], "bias words or degradation"),
        ({"output": "/data/sd", "images_per_group": 100}, ["ffr", "ffr_degraded"], [0.99], "bias words or degradation"),
    ],
)
def test_sweep_output_for_several_plans_is_refused(generation, mixtures, ratios, says):
    with pytest.raises(ConfigError) as error:
        check_sweep_generation(sweep_config(**generation), ["none", *mixtures], ratios)
    message = str(error.value)
    assert "\n" not in message and message.startswith("config: generation.output: ") and says in message


@pytest.mark.parametrize(
    "counts_from, mixtures, named",
    [("ffr", ["ffr", "usb"], "'usb' the 'ffr' budget instead of its own 'usb'"),
     ("usb", ["ffr_degraded"], "'ffr_degraded' the 'usb' budget instead of its own 'ffr'"),
     ("ffr", ["ffr_biased"], "'ffr_biased' the 'ffr' budget instead of its own 'biased'")],
)
def test_sweep_counts_from_another_rule_is_refused(counts_from, mixtures, named):
    with pytest.raises(ConfigError) as error:
        check_sweep_generation(sweep_config(counts_from=counts_from), mixtures, [0.99])
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"config: generation.counts_from={counts_from} ") and named in message
