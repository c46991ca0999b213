"""``ray job submit -- python jobs/sweep.py --preset smoke`` against a head started by the test,
with the job's driver killed mid-sweep and the same command submitted again."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import BIN, REPO
from fake2real.presets import PRESETS
from fake2real.track.names import SELECTED_TAG, TRIAL_TAG
from fake2real.track.names import PARENT_TAG

TRIALS = PRESETS["smoke"]["sweep"]["search"]["num_samples"]
FIRST, SECOND = "sweep-first", "sweep-second"  # submission ids; both stopped when the test ends


def ray_job(args: list[str], env: dict) -> subprocess.CompletedProcess:
    # The head's job agent registers some seconds after the dashboard answers (longer on a loaded
    # machine): until then Ray refuses the submission outright, before running anything.
    for _ in range(6):
        completed = subprocess.run([str(BIN / "ray"), "job", *args], capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
        if "No available agent to submit job" not in completed.stderr:
            return completed
        time.sleep(10)
    return completed


def finished_trials(tune_dir: Path) -> dict[str, int]:
    """Trial id → number of reports, for the trials Tune's saved state calls TERMINATED."""
    finished = {}
    for state in tune_dir.glob("cell-*/experiment_state-*.json"):
        try:
            trials = [json.loads(trial) for trial, _ in json.loads(state.read_text())["trial_data"]]
        except json.JSONDecodeError:  # caught mid-write: read it at the next poll
            continue
        for trial in trials:
            results = list(state.parent.glob(f"_trial_{trial['trial_id']}_*/result.json"))
            if trial["status"] == "TERMINATED" and results:
                finished[trial["trial_id"]] = len(results[0].read_text().splitlines())
    return finished


@pytest.fixture
def job_env(ray_head):
    """The environment for ``ray job`` on the test head; stops this test's jobs when it ends, so
    that a failed assertion leaves no sweep holding the cluster's CPUs for the tests after it."""
    env = {**os.environ, **ray_head.env}
    yield env
    for submission_id in (FIRST, SECOND):
        ray_job(["stop", "--address", ray_head.dashboard_url, submission_id], env)


def test_sweep_smoke_survives_a_killed_driver(ray_head, job_env, mlflow_server, tmp_path):
    out = tmp_path / "out"
    env = job_env
    sweep = [
        "--address", ray_head.dashboard_url, "--working-dir", str(REPO), "--",
        "python", "jobs/sweep.py", "--preset", "smoke", f"output_dir={out}",
        f"tracking.uri={mlflow_server}", "tracking.experiment=job-submit",
    ]
    submitted = ray_job(["submit", "--no-wait", "--submission-id", FIRST, *sweep], env)
    assert submitted.returncode == 0, submitted.stderr[-2000:]

    # Kill the driver once the first cell is done and the second has a finished trial.
    tune = out / "runs" / "tune"
    deadline = time.monotonic() + 600
    while not (len(list(tune.glob("cell-*/best.json"))) == 1 and len(finished_trials(tune)) > TRIALS):
        status = ray_job(["status", "--address", ray_head.dashboard_url, FIRST], env).stdout
        assert "FAILED" not in status and "SUCCEEDED" not in status, status + ray_job(["logs", "--address", ray_head.dashboard_url, FIRST], env).stdout[-4000:]
        assert time.monotonic() < deadline, "the sweep did not reach its second cell"
        time.sleep(1)
    stopped = ray_job(["stop", "--address", ray_head.dashboard_url, FIRST], env)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    before = finished_trials(tune)

    completed = ray_job(["submit", "--submission-id", SECOND, *sweep], env)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "| ffr | erm | 1 |" in completed.stdout and "| ffr | groupdro | 1 |" in completed.stdout
    assert "succeeded" in completed.stdout

    # Finished trials were not run again: same trial folders, not one report more; none added.
    after = {name: count for name, count in finished_trials(tune).items() if name in before}
    assert after == before
    assert len(list(tune.glob("cell-*/_trial_*"))) == 2 * TRIALS

    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("job-submit")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    sweeps = [r for r in runs if r.info.run_name == "sweep-smoke"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    cells = {r.info.run_name: r for r in runs if r.data.tags.get(PARENT_TAG) == sweeps[0].info.run_id}
    assert sorted(cells) == ["cell-r0.9-ffr-erm", "cell-r0.9-ffr-groupdro"]
    for cell in cells.values():
        assert cell.info.status == "FINISHED"
        assert {"test/worst_group_accuracy", "val/worst_group_accuracy", "search/trials", "search/trial_epochs"} <= set(cell.data.metrics)
        assert "test/worst_group_accuracy_ci95" not in cell.data.metrics  # one seed: no interval
        assert cell.data.metrics["search/trials"] == TRIALS and "selected.lr" in cell.data.params
        below = [r for r in runs if r.data.tags.get(PARENT_TAG) == cell.info.run_id]
        # One MLflow run per Tune trial, even though the driver died: runs are found again by key.
        trials = [r for r in below if TRIAL_TAG in r.data.tags]
        assert len(trials) == TRIALS and len({r.data.tags[TRIAL_TAG] for r in trials}) == TRIALS
        selected = [r for r in below if r.data.tags.get(SELECTED_TAG) == "true"]
        assert [r.info.run_name for r in selected] == [cell.info.run_name.removeprefix("cell-") + "-seed0"]
        assert "test/worst_group_accuracy" in selected[0].data.metrics and "checkpoint_uri" in selected[0].data.tags
    # FFR's stage 1 is shared by both cells and every trial: one stage-1 run in the whole sweep.
    assert len([r for r in runs if r.info.run_name.endswith("/stage1_synthetic")]) == 1
    assert len(list(out.glob("runs/stage1_synthetic-*"))) == 1
    artifacts = {a.path for a in client.list_artifacts(sweeps[0].info.run_id)}
    assert {"results.md", "results.csv", "results.png"} <= artifacts
