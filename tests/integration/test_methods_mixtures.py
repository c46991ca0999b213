"""Every method and every mixture trains for one epoch on the built-in benchmark, in one sweep.

A covering design rather than the full 6 × 8 product (42 distinct stages, ~8 min of fixed Ray
Train cost on 2 cores): every method on real data, every mixture with ERM and DFR. Stages that
compute the same thing are trained once (by their hash), which the test checks by counting.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from fake2real.config import build_config
from fake2real.data.table import read_info, read_table
from fake2real.presets import preset
from fake2real.entrypoints import sweep_dry_run
from fake2real.run.sweep import run_sweep
from fake2real.train.methods import METHODS
from fake2real.train.methods.dfr import C_GRID
from fake2real.train.mixtures import MIXTURES
from fake2real.train.stage_record import RESULT_FILE

OTHER_MIXTURES = sorted(set(MIXTURES) - {"none"})


def test_every_method_and_mixture_one_epoch(ray_connected, tmp_path):
    config = build_config(
        overrides={
            "output_dir": str(tmp_path / "out"),
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "registry"},
            "generation": {"test_images_per_group": 10},
            "train": {"num_workers": 1},
            "sweep": {
                "search": {"num_samples": 0},  # fixed hyperparameters: this test is about coverage
                "mixtures": ["none"],
                "methods": sorted(METHODS),
                "ablation_mixtures": OTHER_MIXTURES,
                "ablation_methods": ["erm", "dfr"],
            },
        },
        base=preset("smoke"),
    )
    planned = sweep_dry_run(config)  # what the sweep says it will do, before it does it
    outcome = run_sweep(config)
    cells = {(r.mixture, r.method): r for r in outcome.results}
    assert set(cells) == {("none", m) for m in METHODS} | {(m, x) for m in OTHER_MIXTURES for x in ("erm", "dfr")}

    for (mixture, method), result in cells.items():
        metrics = result.metrics
        for key in ("test/worst_group_accuracy", "test/balanced_accuracy", "synthetic_test/worst_group_accuracy"):
            assert 0.0 <= metrics[key] <= 1.0, (mixture, method, key)
        assert 0.0 <= metrics["probe/g_leakage_auroc"] <= 1.0 and not math.isnan(metrics["probe/g_leakage_auroc"])
        if method == "dfr":
            assert metrics["dfr/C"] in C_GRID
            # DFR refits the head of the very model ERM selected: the same stages, reused.
            assert [s.key for s in result.stages] == [s.key for s in cells[(mixture, "erm")].stages]

    # Distinct stages: none × 5 training methods (dfr trains as erm), then with ERM usb 1, asb 1,
    # ffr 2, ffr_reversed 1 (its real stage is none/erm's), ffr_unbalanced 2, synthetic_only 0
    # (FFR's stage 1), ffr_degraded 2, ffr_biased 2.
    finished = sorted(p.parent.name for p in (tmp_path / "out" / "runs").glob(f"*/{RESULT_FILE}"))
    assert len(finished) == 5 + 1 + 1 + 2 + 1 + 2 + 0 + 2 + 2, finished
    assert f"stages to train after sharing: {len(finished)} " in planned, planned
    # Each pool was generated once, to the largest draw: exactly what the dry run said it would add.
    pools = {p.name: read_info(p) for p in (tmp_path / "out" / "data").glob("pool-*")}
    assert len(pools) == 4  # balanced, unbalanced (no bias words), degraded, held-out test
    added = sorted(int(n) for n in re.findall(r"\(procedural, \w+\): holds 0, must add (\d+)", planned))
    assert added == sorted(info.num_rows for info in pools.values()), planned
    again = sweep_dry_run(config)
    assert re.findall(r"must add (\d+)", again) == ["0"] * 4
    assert f"stages to train after sharing: {len(finished)} " in again and f"already trained: {len(finished)}" in again
    assert cells[("ffr_reversed", "erm")].stages[0].key == cells[("none", "erm")].stages[0].key
    assert cells[("synthetic_only", "erm")].stages[0].key == cells[("ffr", "erm")].stages[0].key

    # Synthetic tables: usb fills groups to the largest (35 to each minority group, as 40 − 5),
    # asb/ffr share one balanced table, the ablations get their own; one held-out test table.
    # ffr_biased: ffr's 70 // 4 = 17 per group, 34 per class, shared as the real 40 : 5
    # (34·40 // 45 = 30, 34·5 // 45 = 3).
    data = tmp_path / "out" / "data"
    infos = {p.name: read_info(p) for p in data.glob("synthetic-*")}
    train_counts = sorted(tuple(sorted(i.group_counts["train"].items())) for i in infos.values() if "train" in i.group_counts)
    assert (("y0_b1", 35), ("y1_b0", 35)) in train_counts
    assert (("y0_b0", 30), ("y0_b1", 3), ("y1_b0", 3), ("y1_b1", 30)) in train_counts
    assert sum(1 for i in infos.values() if i.extra.get("degradation")) == 1
    unbalanced = next(p for p, i in infos.items() if i.extra.get("bias_words") is False)
    assert read_table(data / unbalanced)["prompt"].to_pylist()[0] in ("a disc", "a square")
    tests = [i for i in infos.values() if "test" in i.group_counts]
    assert len(tests) == 1 and tests[0].group_counts["test"] == {g: 10 for g in ("y0_b0", "y0_b1", "y1_b0", "y1_b1")}

    # MLflow: every cell's run carries the analysis metrics, and the results table shows them.
    client = MlflowClient(tracking_uri=outcome.tracking_uri)
    run = client.get_run(cells[("ffr", "dfr")].run_id)
    assert {"probe/g_leakage_auroc", "synthetic_test/worst_group_accuracy", "dfr/C"} <= set(run.data.metrics)
    table = (Path(str(outcome.directory)) / "results.md").read_text()
    assert "G-leakage AUROC" in table and "| ffr_degraded | erm |" in table
