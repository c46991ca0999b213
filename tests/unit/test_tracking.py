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


def test_runs_are_found_again_by_key(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path / "artifacts")
    parent = tracker.run_for("k-parent", "parent", params={"a": {"b": 1}})
    child = tracker.run_for("k-child", "child", parent_id=parent)
    tracker.finish(child)
    assert tracker.run_for("k-child", "child", parent_id=parent) == child
    run = tracker.client.get_run(child)
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert tracker.client.get_run(parent).data.params == {"a.b": "1"}
