"""Errors a user can act on. Entry points print them as one line and exit nonzero."""


class Fake2RealError(Exception):
    """Base class: the message names the problem (field, file or value) in one line."""


class ConfigError(Fake2RealError):
    """A config field is missing, unknown or out of range."""


class DataError(Fake2RealError):
    """A dataset or table is missing, incomplete or inconsistent (e.g. an empty group)."""


class TrackingError(Fake2RealError):
    """The MLflow tracking store cannot be reached or used."""
