"""Connecting to Ray: the cluster in $RAY_ADDRESS (as under ``ray job submit``), else a local one."""

from __future__ import annotations

import os

import ray


def init_ray() -> None:
    if ray.is_initialized():
        return
    ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=True)
