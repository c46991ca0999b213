"""Credentials in URIs (``tracking.uri=http://user:password@host``, ``s3://KEY:SECRET@bucket``) never
reach an error line, a printed summary or an MLflow param or tag: ``errors.redact`` and where it
is applied."""

from __future__ import annotations

import pytest

from fake2real import cli
from fake2real.errors import ConfigError, redact

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
