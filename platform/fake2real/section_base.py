"""The base of every config section: ``sections.py``'s and each generator backend's own
(``generate/``), which ``sections.py`` assembles into ``generation``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Section(BaseModel):
    # inf passes a lower bound and nan an unbounded field: either would fail only deep in a run.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
