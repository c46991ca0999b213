"""``ray job submit -- python jobs/sweep.py --preset smoke`` against a head started by the test."""

from __future__ import annotations

import os
import subprocess
import time

from mlflow.tracking import MlflowClient

from helpers import BIN, REPO
from fake2real.track.mlflow_runs import PARENT_TAG


def submit(command: list[str], env: dict) -> subprocess.CompletedProcess:
    # The head's job agent registers some seconds after the dashboard answers (longer on a loaded
    # machine): until then Ray refuses the submission outright, before running anything.
    for _ in range(6):
        completed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
        if "No available agent to submit job" not in completed.stderr:
            return completed
        time.sleep(10)
    return completed


def test_sweep_smoke_via_ray_job_submit(ray_head, mlflow_server, tmp_path):
    out = tmp_path / "out"
    completed = submit(
        [
            str(BIN / "ray"), "job", "submit", "--address", ray_head.dashboard_url, "--working-dir", str(REPO), "--",
            "python", "jobs/sweep.py", "--preset", "smoke", f"output_dir={out}",
            f"tracking.uri={mlflow_server}", "tracking.experiment=job-submit",
        ],
        {**os.environ, **ray_head.env},
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "| ffr | erm | 1 |" in completed.stdout
    assert "| ffr | groupdro | 1 |" in completed.stdout
    assert "succeeded" in completed.stdout

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("job-submit")
    runs = client.search_runs([experiment.experiment_id])
    sweep = [r for r in runs if r.info.run_name == "sweep-smoke"]
    assert len(sweep) == 1 and sweep[0].info.status == "FINISHED"
    cells = [r for r in runs if r.data.tags.get(PARENT_TAG) == sweep[0].info.run_id]
    assert sorted(r.info.run_name for r in cells) == ["ffr-erm-seed0", "ffr-groupdro-seed0"]
    for cell in cells:
        assert "test/worst_group_accuracy" in cell.data.metrics
    # FFR's stage 1 is shared by both methods: one stage-1 run in the whole sweep.
    assert len([r for r in runs if r.info.run_name == "stage1_synthetic"]) == 1
    artifacts = {a.path for a in client.list_artifacts(sweep[0].info.run_id)}
    assert {"results.md", "results.csv", "results.png"} <= artifacts
