"""Errors a user can act on. Entry points print them as one line and exit nonzero."""

import re


class Fake2RealError(Exception):
    """Base class: the message names the problem (field, file or value) in one line."""


class ConfigError(Fake2RealError):
    """A config field is missing, unknown or out of range."""


class DataError(Fake2RealError):
    """A dataset or table is missing, incomplete or inconsistent (e.g. an empty group)."""


class TrackingError(Fake2RealError):
    """The MLflow tracking store cannot be reached or used."""


class TrainingError(Fake2RealError):
    """A stage cannot go on (a non-finite loss); raised in a training worker, printed by the driver."""


class ClusterError(Fake2RealError):
    """The Ray cluster cannot ever provide what a job asks for (e.g. a GPU on a cluster without one)."""


class InUseError(Fake2RealError):
    """Another job is writing the workspace (``output_dir``) this job would write (``data/lease.py``)."""


# The userinfo of a URL (scheme://user:password@host, scheme://token@host): up to the last "@"
# before the first "/" (as urllib splits it); failing that, a user:password whose password holds
# a "/" (an S3 secret key may), unless what follows the ":" is a port (host:8080/a@b is no userinfo).
_USERINFO = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
    r"(?:[^\s/?#'\"]*|[^\s/?#@'\"]*:(?!\d{1,5}(?:[/?#\s'\"]|$))[^\s'\"]*)@"
)


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``
    (``s3://KEY:SECRET@bucket/x`` → ``s3://***@bucket/x``): for every message, log line and
    MLflow value the platform writes. An ``@`` after the host (``s3://b/a@2x.png``) is kept."""
    return _USERINFO.sub(r"\g<scheme>***@", text)
