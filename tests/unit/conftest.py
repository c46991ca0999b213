"""Fixtures shared by the unit tests."""

from __future__ import annotations

import functools

import pytest

from helpers import experiment_config


@pytest.fixture
def make_config(tmp_path):
    """Builds an ``ExperimentConfig`` that writes under this test's ``tmp_path / "out"``:
    ``make_config("sweep.seeds=[0, 1]", train={"method": "jtt"})`` (helpers.experiment_config)."""
    return functools.partial(experiment_config, tmp_path)
