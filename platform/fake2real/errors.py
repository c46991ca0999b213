"""Errors a user can act on. Entry points print them as one line and exit nonzero."""


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
