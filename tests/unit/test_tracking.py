"""Tracking store resolution and the one-line error for an unusable store (no server needed)."""

from __future__ import annotations

import pytest

from fake2real.errors import TrackingError
from fake2real.track.mlflow_runs import Tracker, resolve_uri


def test_default_store_is_sqlite_in_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_environment_overrides_the_default_and_config_overrides_both(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_uri(None) == "http://127.0.0.1:5999"
    assert resolve_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_unusable_sqlite_store_is_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    uri = f"sqlite:///{tmp_path / 'file' / 'mlflow.db'}"  # a "folder" that is a regular file
    with pytest.raises(TrackingError, match="cannot use MLflow at") as error:
        Tracker(uri, "e", tmp_path / "artifacts")
    assert "\n" not in str(error.value)


def test_a_store_that_is_back_within_the_wait_is_used_and_one_that_is_not_fails_in_one_line(tmp_path, monkeypatch):
    import time

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real, calls = MlflowClient.get_experiment_by_name, []

    def restarting(client, name):  # the server answers from the third attempt on
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("Max retries exceeded with url: /api/2.0/mlflow/experiments/get-by-name")
        return real(client, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", restarting)
    assert Tracker(uri, "e", tmp_path / "artifacts", wait_s=30).experiment_id is not None and len(calls) == 3
    calls.clear()
    with pytest.raises(TrackingError, match="^tracking: cannot use MLflow at"):  # a job's first contact: at once
        Tracker(uri, "e", tmp_path / "artifacts")
    assert len(calls) == 1

    def down(client, name):
        raise ConnectionError("refused")

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", down)
    started = time.monotonic()
    with pytest.raises(TrackingError, match="cannot use MLflow at .*: refused$"):
        Tracker(uri, "e", tmp_path / "artifacts", wait_s=3)
    assert 3 <= time.monotonic() - started < 10  # bounded by the wait


def test_runs_are_found_again_by_key(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path / "artifacts")
    parent = tracker.run_for("k-parent", "parent", params={"a": {"b": 1}})
    child = tracker.run_for("k-child", "child", parent_id=parent)
    tracker.finish(child)
    assert tracker.run_for("k-child", "child", parent_id=parent) == child
    run = tracker.client.get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert tracker.client.get_run(parent).data.params == {"a.b": "1"}


def test_a_relative_sqlite_store_in_the_environment_is_made_absolute(monkeypatch, tmp_path):
    # A search trial runs in a folder of its own: it gets the driver's store, never its own.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///runs/mlflow.db")
    assert resolve_uri(None) == f"sqlite:///{tmp_path}/runs/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////srv/mlflow.db")
    assert resolve_uri(None) == "sqlite:////srv/mlflow.db"
