"""Shared test helpers: the repository root, running a job as a user would, a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_job(script: str, *args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python jobs/<script> args…`` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )


def write_locally(rows, path, batch_fn, fn_kwargs, info):
    """``data.ingest.write_on_ray`` without Ray, for unit tests: the whole listing as one batch, one part."""
    from fake2real.data.table import count_groups, finalize, to_contract, write_part

    write_part(path, to_contract(batch_fn(rows, **fn_kwargs)))
    info.num_rows, info.group_counts = rows.num_rows, count_groups(rows)
    finalize(path, info)
    return info


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server or a gloo group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
