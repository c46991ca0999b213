"""The base of every config section: ``sections.py``'s and each generator backend's own
(``generate/``), which ``sections.py`` assembles into ``generation``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    # inf passes a lower bound and nan an unbounded field: either would fail only deep in a run.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# A seed that reaches numpy or Optuna: numpy's generators refuse a negative one, Optuna's sampler
# (numpy's RandomState) one of 2³² or more; checked as the config is read, not after training.
Seed = Annotated[int, Field(ge=0, lt=2**32)]
