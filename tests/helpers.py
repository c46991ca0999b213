"""Shared test helpers: the repository root, an experiment config written under a test's folder,
running a job as a user would, a free local port, waiting for a server and stopping a process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def experiment_config(root: Path, *overrides: str, **fields):
    """An ``ExperimentConfig`` whose ``output_dir`` is ``root/out``: ``key=value`` overrides (values
    read as YAML, as on a job's command line), then top-level fields and whole sections as Python
    values (``dataset={"bias_ratio": 0.9}``) merged over them; validated as a whole by build_config.
    Unit tests get it bound to their tmp_path as the ``make_config`` fixture (tests/unit/conftest.py)."""
    from fake2real.config import build_config, merge, parse_overrides

    data = merge({"output_dir": str(root / "out")}, parse_overrides(list(overrides)))
    return build_config(overrides=merge(data, fields))


def write_locally(rows, path, batch_fn, fn_kwargs, info, sources=None):
    """``data.ingest.write_on_ray`` without Ray, for unit tests: the whole listing as one batch, one part."""
    from fake2real.data.sources import record
    from fake2real.data.table import count_groups, finalize, to_contract, write_part

    if sources is not None:
        record(path, sources, info)
    write_part(path, to_contract(batch_fn(rows, **fn_kwargs)))
    info.num_rows, info.group_counts = rows.num_rows, count_groups(rows)
    finalize(path, info)
    return info


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a server or a gloo group)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, process: subprocess.Popen, log: Path, headers: dict | None = None) -> None:
    """Until ``url`` answers 2xx (``process`` still running), else RuntimeError with the log's end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} not up after {timeout}s:\n{log.read_text()[-3000:]}")


def stop_group(process: subprocess.Popen, grace: float, sig: int = signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def run_ranks(target, world: int, timeout: float = 120) -> dict:
    """``target(rank, world, port, results)`` in ``world`` forked processes that share a free port
    (their gloo group's rendezvous); rank → what each put on ``results`` as ``(rank, value)``.
    Values are read while the processes run: one larger than the pipe's buffer blocks its sender
    until read. A process that dies first fails the test with its exit code."""
    import torch.multiprocessing as mp

    context = mp.get_context("fork")
    results = context.SimpleQueue()
    port = free_port()
    processes = [context.Process(target=target, args=(rank, world, port, results)) for rank in range(world)]
    for process in processes:
        process.start()
    values: dict = {}
    deadline = time.monotonic() + timeout
    while len(values) < world:
        if not results.empty():
            rank, value = results.get()
            values[rank] = value
            continue
        failed = [(rank, p.exitcode) for rank, p in enumerate(processes) if p.exitcode not in (None, 0)]
        assert not failed and time.monotonic() < deadline, f"ranks (rank, exit code) {failed or 'timed out'}"
        time.sleep(0.05)
    for rank, process in enumerate(processes):
        process.join(timeout=timeout)
        assert process.exitcode == 0, f"rank {rank} exited with {process.exitcode}"
    return values


def panels(board: dict) -> list[dict]:
    """A Grafana board's panels, those in collapsed rows too."""
    found = []
    for panel in board.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found
