"""A sweep over a config key, experiments two at a time, on real Ray and MLflow: every point runs
every cell, what does not depend on the axis is trained once, and the results, the MLflow runs and
the HTML report carry the points and the regime map."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from fake2real.config import build_config
from fake2real.presets import preset
from fake2real.report.html import build_report
from fake2real.run.sweep import run_sweep
from fake2real.track.names import AXES_TAG, LEVEL_TAG

STRENGTHS = [0.0, 0.3]


def test_a_sweep_over_the_artifact_strength(ray_connected, tmp_path):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = build_config(
        overrides={
            "output_dir": str(tmp_path / "out"),
            "tracking": {"uri": tracking, "experiment": "axes"},
            "generation": {"test_images_per_group": 10},
            "train": {"num_workers": 1},
            "sweep": {"mixtures": ["none", "asb", "ffr"], "methods": ["erm"], "search": {"num_samples": 0},
                      "axes": {"dataset.shapes.artifact_strength": STRENGTHS}, "max_concurrent_experiments": 2},
        },
        base=preset("smoke"),
    )
    sweep = run_sweep(config)

    assert [(r.point["dataset.shapes.artifact_strength"], r.mixture) for r in sweep.results] == [
        (s, m) for s in STRENGTHS for m in ("none", "asb", "ffr")]
    client = MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([sweep.experiment_id], max_results=1000)
    experiments = [r for r in runs if r.data.tags.get(LEVEL_TAG) == "experiment"]
    assert sorted(json.loads(r.data.tags[AXES_TAG])["dataset.shapes.artifact_strength"] for r in experiments) == sorted(STRENGTHS * 3)
    assert {r.info.run_name for r in experiments} >= {"[artifact_strength=0.3] r0.9-ffr-erm-seed0", "[artifact_strength=0.0] r0.9-none-erm-seed0"}
    # The real-only stage does not depend on the renderer: one run, reused by the other point.
    stages = [r for r in runs if r.data.tags.get(LEVEL_TAG) == "stage"]
    assert sorted(r.data.params["stage"] for r in stages) == sorted(["real"] + ["mixed"] * 2 + ["stage1_synthetic", "stage2_real"] * 2)
    assert len({r.data.params["train_tables"] for r in stages if r.data.params["stage"] == "real"}) == 1
    assert len(list((tmp_path / "out" / "data").glob("real-*"))) == 1
    # Two at a time: some experiment ran while another did.
    spans = sorted((r.info.start_time, r.info.end_time) for r in experiments)
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))

    results = Path(str(sweep.directory))
    text = (results / "results.md").read_text()
    assert "### artifact_strength=0.3, bias ratio 0.9" in text
    assert "#### ffr − asb, erm, r = 0.9" in text and "#### ffr − usb" not in text  # usb did not run
    with open(results / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(float(row["dataset.shapes.artifact_strength"]) for row in rows) == sorted(STRENGTHS * 3)

    page = build_report(tracking, "axes", tmp_path / "report.html", sweep.run_id, saliency=False)
    html = page.read_text()
    assert '<figure id="regime-map">' in html and "<th>point</th>" in html
    assert "<td>artifact_strength=0.3</td><td>0.9</td><td>ffr</td><td>erm</td><td>1</td>" in html
