"""Credentials in URIs (``tracking.uri=http://user:password@host``, ``s3://KEY:SECRET@bucket``) never
reach an error line, a printed summary or an MLflow param or tag: ``errors.redact`` and where it
is applied."""

from __future__ import annotations

import socket

import pytest

from fake2real import cli
from fake2real.config import build_config
from fake2real.data.storage import Location
from fake2real.entrypoints import where_to_look
from fake2real.errors import ConfigError, TrackingError, redact
from fake2real.run.experiment import Experiment
from fake2real.run.sweep import SweepResult
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import CHECKPOINT_TAG
from fake2real.prepare.workspace import Workspace

SECRETS = ("password", "SECRET", "KEY:", "tok3n")


@pytest.mark.parametrize(("text", "shown"), [
    ("http://user:password@host:5000/x", "http://***@host:5000/x"),
    ("s3://KEY:SECRET@bucket/data", "s3://***@bucket/data"),
    ("https://tok3n@github.com/o/r.git", "https://***@github.com/o/r.git"),
    ("postgresql+psycopg2://me:password@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
    ("http://user:pass@word@host/x", "http://***@host/x"),  # an "@" left unencoded in the password
    ("path 's3://KEY:SEC/RET+x@bucket/a' here", "path 's3://***@bucket/a' here"),  # an S3 secret key may hold "/"
    ("a s3://KEY:SECRET@b/x, then http://u:password@h/y and gs://b/z", "a s3://***@b/x, then http://***@h/y and gs://b/z"),
    ("s3://KEY:SECRET@bucket/images/a@2x.png", "s3://***@bucket/images/a@2x.png"),
])
def test_redact_hides_the_userinfo_of_every_url(text, shown):
    assert redact(text) == shown
    assert redact(shown) == shown


@pytest.mark.parametrize("text", [
    "s3://bucket/images/a@2x.png",  # an "@" in the path only
    "http://mlflow:8080/a@b",  # host:port, then an "@" in the path
    "gs://bucket/x?version=a@b",
    "sqlite:////tmp/a@b/mlflow.db",
    "config: dataset.bias_ratio: Input should be less than 1 (got 1.0)",
    "user:password@host without a scheme is no URL",
    "",
])
def test_redact_leaves_text_without_credentials_as_it_is(text):
    assert redact(text) == text


def test_the_error_line_of_a_job_never_echoes_credentials(capsys):
    def fail():
        raise ConfigError("config: output_dir: s3://KEY:SECRET@bucket/x: cannot open this location: s3://KEY:SECRET@bucket/x")

    with pytest.raises(SystemExit) as exit:
        cli.main(fail)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: config: output_dir: s3://***@bucket/x: cannot open this location: s3://***@bucket/x\n"
    assert "SECRET" not in err


def test_a_training_failure_line_never_echoes_credentials(capsys):
    from ray.train import TrainingFailedError

    def fail():
        raise TrainingFailedError("Training failed.\nOSError: When reading s3://KEY:SECRET@bucket/runs/x: access denied")

    with pytest.raises(SystemExit) as exit:
        cli.main(fail)
    assert exit.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: training failed: OSError: When reading s3://***@bucket/runs/x: access denied\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_named_without_its_password(tmp_path):
    with pytest.raises(TrackingError) as error:
        Tracker(f"http://user:password@127.0.0.1:{_closed_port()}", "e", tmp_path / "artifacts")
    assert str(error.value).startswith("tracking: cannot use MLflow at http://***@127.0.0.1:")
    assert "password" not in str(error.value)


def test_mlflow_params_and_tags_carry_no_credentials(tmp_path):
    """An experiment run's params (dataset.root, the tables under output_dir) and tags (the
    checkpoint), and a sweep run's whole config (output_dir, tracking.uri)."""
    config = build_config(overrides={
        "output_dir": "s3://KEY:SECRET@bucket/out", "tracking": {"uri": "http://user:password@mlflow:5000"},
        "dataset": {"name": "celeba", "root": "s3://KEY:SECRET@bucket/celeba"},
    })
    workspace = Workspace(Location(config.output_dir))
    real = workspace.data / "real-celeba-abc"
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path / "artifacts")
    run = Experiment(config, workspace, real, None, None).open_run(tracker, "experiment", None, {"note": f"from {real}"})
    tracker.set_tag(run, CHECKPOINT_TAG, f"{workspace.runs}/real-abc/checkpoint_000001")
    sweep = tracker.run_for("sweep-abc", "sweep", params=config.model_dump(mode="json"))

    logged = tracker.client.get_run(run).data
    assert logged.params["dataset.root"] == "s3://***@bucket/celeba"
    assert logged.params["data.real_table"] == "s3://***@bucket/out/data/real-celeba-abc"
    assert logged.tags[CHECKPOINT_TAG] == "s3://***@bucket/out/runs/real-abc/checkpoint_000001"
    assert logged.tags["note"] == "from s3://***@bucket/out/data/real-celeba-abc"
    swept = tracker.client.get_run(sweep).data.params
    assert (swept["output_dir"], swept["tracking.uri"]) == ("s3://***@bucket/out", "http://***@mlflow:5000")
    everything = [*logged.params.values(), *logged.tags.values(), *swept.values()]
    assert not [value for value in everything if any(secret in value for secret in SECRETS)]
    # What names the jobs is unchanged: the experiment's key still comes from the config as given.
    assert Experiment(config, workspace, real, None, None).key == f"{config.digest('dataset', 'train', 'seed')}-none-none"


def test_where_to_look_leaves_out_the_tracking_password():
    text = where_to_look(SweepResult([], "", "s3://KEY:SECRET@bucket/out/results/quick-abc", "run123", "http://user:password@mlflow:5000", "7"))
    assert "http://***@mlflow:5000/#/experiments/7" in text and "s3://***@bucket/out/results/quick-abc/results.md" in text
    assert not any(secret in text for secret in SECRETS)


def test_the_html_report_names_its_store_without_the_password():
    from fake2real.report.html import render
    from fake2real.report.runs import SweepRuns

    page = render(SweepRuns("run1", "quick", "FINISHED", []), [], "http://user:password@mlflow:5000")
    assert "at <code>http://***@mlflow:5000</code>" in page and "password" not in page


def test_the_real_table_line_names_its_folder_without_the_secret(monkeypatch, capsys):
    import fake2real.prepare.workspace as workspace_module
    from fake2real.data.table import TableInfo

    config = build_config(overrides={"output_dir": "s3://KEY:SECRET@bucket/out"})
    monkeypatch.setattr(workspace_module, "is_complete", lambda path: False)
    from fake2real.data.datasets.shapes import Shapes

    monkeypatch.setattr(Shapes, "build_real_table", classmethod(lambda cls, dataset, path: TableInfo("shapes", ["a", "b"], ["c", "d"], "real")))
    path = workspace_module.prepare_real(config, Workspace(Location(config.output_dir)))
    assert str(path).startswith("s3://KEY:SECRET@bucket/out/data/real-shapes-")  # the table's location itself is unchanged
    out = capsys.readouterr().out
    assert "[data] writing the real shapes table to s3://***@bucket/out/data/real-shapes-" in out and "SECRET" not in out
