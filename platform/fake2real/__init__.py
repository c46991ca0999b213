"""fake2real: From Fake to Real (FFR) on Ray — generation, two-stage training, sweeps, tracking."""

__version__ = "0.1.0"
