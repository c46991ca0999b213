"""Jobs that used to hang or fail silently, on the test cluster (2 CPUs, no GPU, no autoscaler):
a GPU request is refused in one line before any stage starts; a stage whose loss turns
non-finite stops with one line and its MLflow runs are FAILED. An error raised in a training
worker is the job's last line: the workers' tracebacks Ray forwards to the driver do not follow it."""

from __future__ import annotations

import time

from mlflow.tracking import MlflowClient

from helpers import run_job


def one_line_error(completed) -> str:
    lines = [line for line in completed.stderr.strip().splitlines() if line.strip() and not line.startswith(("[", "20"))]
    errors = [line for line in lines if line.startswith("error: ")]
    assert completed.returncode == 2 and len(errors) == 1, completed.stderr[-3000:]
    return errors[0]


def last_line_error(completed) -> str:
    """The one error line, printed last, with no worker's traceback of it (Ray forwards workers'
    stderr to the driver after the error reached it)."""
    error = one_line_error(completed)
    assert completed.stderr.strip().splitlines()[-1] == error, completed.stderr[-3000:]
    assert "fake2real.errors." not in completed.stderr, completed.stderr[-3000:]
    return error


def test_a_gpu_request_on_a_cluster_without_gpus_fails_at_once(ray_head, tmp_path):
    started = time.monotonic()
    completed = run_job("train.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", "train.use_gpu=true",
                        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", env=ray_head.env, timeout=300)
    error = one_line_error(completed)
    assert "needs" in error and "GPU" in error and "no autoscaler node type provides more" in error
    assert time.monotonic() - started < 120  # not a 60 s retry loop that never ends
    assert not (tmp_path / "out" / "runs").exists() or not any((tmp_path / "out" / "runs").rglob("stage_result.json"))


def test_a_non_finite_loss_stops_the_stage_and_marks_its_runs_failed(ray_head, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    completed = run_job("train.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", "train.mixture=none",
                        "train.real.lr=1e30", "train.real.epochs=2", f"tracking.uri={uri}", env=ray_head.env, timeout=400)
    error = last_line_error(completed)
    assert "the training loss is nan in epoch 0" in error and "lower its learning rate" in error, error
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and {run.info.status for run in runs} == {"FAILED"}, [(r.info.run_name, r.info.status) for r in runs]


def test_a_stream_dir_a_worker_cannot_create_is_the_last_line(ray_head, tmp_path):
    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    completed = run_job("train.py", "--preset", "smoke", f"output_dir={tmp_path / 'out'}", "train.mixture=none",
                        "train.loader.mode=stream", f"train.loader.stream_dir={taken}",
                        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", env=ray_head.env, timeout=400)
    error = last_line_error(completed)
    assert error == f"error: config: train.loader.stream_dir: cannot create {taken}: File exists", error
