"""Killing the driver mid-stage and running the same command again resumes from the checkpoint;
a searched sweep's trials share the finished work of one workspace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from fake2real.train.local import LATEST_FILE

from helpers import REPO, run_job


# A single-worker stage (train/local.py) resumes from the checkpoint its run folder names; a
# TorchTrainer's from the one its snapshot registers: wait for the first one.
@pytest.mark.parametrize("workers, first_checkpoint", [(1, LATEST_FILE), (2, "checkpoint_manager_snapshot.json")])
def test_interrupted_stage_resumes_from_its_last_checkpoint(ray_head, tmp_path, workers, first_checkpoint):
    out = tmp_path / "out"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        sys.executable, str(REPO / "jobs" / "train.py"), "--preset", "smoke",
        f"output_dir={out}", f"tracking.uri={tracking}", "train.mixture=none",
        "train.real.epochs=12", f"train.num_workers={workers}",
    ]
    env = {**os.environ, **ray_head.env}
    first = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob(f"runs/real-*/{first_checkpoint}")):
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert not list(out.glob("runs/*/stage_result.json")), "a killed stage must not look finished"

    second = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stderr[-3000:]
    result = next(out.glob("runs/real-*/stage_result.json"))
    import json

    metrics = json.loads(result.read_text())["metrics"]
    assert metrics["resumed_from_epoch"] >= 1, metrics
    assert metrics["epoch"] == 12

    # Logging resumed into the same MLflow runs: one experiment run, one stage run.
    client = MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name("fake2real").experiment_id])
    names = sorted(run.info.run_name for run in runs)
    assert len(names) == 2 and names[0].endswith("-none-erm-seed0") and names[1] == f"{names[0]}/real", names
    assert all(run.info.status == "FINISHED" for run in runs)

    # A third run reuses the finished stage without training.
    third = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=200)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "TrainController" not in third.stdout + third.stderr and "(run_local" not in third.stdout + third.stderr
    assert "epoch 1:" not in third.stdout + third.stderr


def test_search_trials_share_a_relative_output_dir(ray_head, tmp_path):
    """A Tune trial runs in a folder of its own: the driver makes ``output_dir`` (and a sqlite
    tracking file) absolute first, so every trial uses the one workspace: the real table is
    written once, FFR's stage 1 is trained once, and no workspace appears inside a trial's folder."""
    cwd = tmp_path / "here"
    cwd.mkdir()
    completed = run_job(
        "sweep.py", "--preset", "smoke", "output_dir=out", "tracking.uri=sqlite:///mlflow.db",
        "sweep.mixtures=[ffr]", "sweep.methods=[erm]", "sweep.search.num_samples=2",
        env=ray_head.env, cwd=cwd, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = cwd / "out"
    assert len(list(out.glob("data/real-*/table.json"))) == 1
    assert len(list(out.glob("runs/stage1_synthetic-*/stage_result.json"))) == 1, sorted(p.name for p in (out / "runs").iterdir())
    # Each stage once in MLflow too: the trials found stage 1 by its key, in the driver's store.
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fake2real").experiment_id])
    assert len([run for run in runs if run.info.run_name.endswith("/stage1_synthetic")]) == 1, [run.info.run_name for run in runs]
    # The trials' own folders (Ray: <session>/artifacts/<time>/cell-<key>/working_dirs/<trial>) hold no workspace.
    trials = list(ray_head.tmp.glob("session_*/artifacts/*/cell-*/working_dirs/*"))
    assert trials, "no trial folder found where Ray puts them"
    assert not [trial for trial in trials if (trial / "out").exists() or (trial / "mlflow.db").exists()]


def test_a_killed_search_trial_resumes_its_single_worker_stage(ray_head, ray_connected, tmp_path):
    """A single-worker stage trains in its Tune trial's own process (train/local.py): that process
    killed after the stage's first checkpoints, Tune runs the trial again (train.max_failures) and
    the stage resumes from the checkpoint its run folder names, in the same MLflow stage run."""
    import json

    from ray.util.state import list_actors

    from fake2real.track.names import LEVEL_TAG, STAGE

    out = tmp_path / "out"
    args = ("sweep.py", "--preset", "smoke", f"output_dir={out}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
            "sweep.mixtures=[none]", "sweep.methods=[erm]", "sweep.seeds=[0]", "sweep.search.num_samples=1",
            "sweep.search.asha=false", "sweep.search.min_epochs=12", "train.real.epochs=12", "train.num_workers=1",
            "train.max_failures=1", "generation.test_images_per_group=0")
    sweep = subprocess.Popen([sys.executable, str(REPO / "jobs" / args[0]), *args[1:]], env={**os.environ, **ray_head.env},
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline, killed = time.monotonic() + 300, None
    while killed is None:
        assert sweep.poll() is None, sweep.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "no trial reached its second checkpoint"
        for latest in out.glob(f"runs/real-*/{LATEST_FILE}"):
            if json.loads(latest.read_text())["number"] >= 2:
                trial = next(a for a in list_actors(filters=[("state", "=", "ALIVE")]) if "ImplicitFunc" in a.class_name)
                os.kill(trial.pid, signal.SIGKILL)
                killed = trial.pid
        time.sleep(0.05)
    output = sweep.communicate(timeout=600)[0]
    assert sweep.returncode == 0, output[-3000:]
    metrics = json.loads(next(out.glob("runs/real-*/stage_result.json")).read_text())["metrics"]
    assert 2 <= metrics["resumed_from_epoch"] < 12 and metrics["epoch"] == 12, metrics
    # The selected trial's stage, resumed, is seed 0's: one stage run in MLflow, FINISHED.
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fake2real").experiment_id], filter_string=f"tags.`{LEVEL_TAG}` = '{STAGE}'")
    assert [run.info.status for run in runs] == ["FINISHED"], [(run.info.run_name, run.info.status) for run in runs]
