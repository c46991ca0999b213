"""Real components for the integration tests, started once per test run and stopped by handle.

- One Ray head (``ray start --head --block``) in its own process group with a private short
  RAY_TMPDIR; stopped by SIGTERM to that group, then SIGKILL of what is left. Never ``ray stop``:
  it kills every Ray process on the host.
- One ``mlflow server`` on 127.0.0.1 with a sqlite store.
- One local S3 (``moto_server``) on 127.0.0.1, started before the Ray head so that Ray's workers
  see its endpoint and credentials in their environment, as a cluster's nodes would.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import s3
from helpers import BIN, free_port, stop_group, wait_http

HERE = Path(__file__).resolve().parent


class RayHead:
    def __init__(self, gcs_address: str, dashboard_url: str, metrics_port: int, env: dict, process: subprocess.Popen, tmp: Path):
        self.gcs_address = gcs_address
        self.dashboard_url = dashboard_url
        self.metrics_port = metrics_port  # the node's metrics agent, for Prometheus (its --temp-dir lists it)
        self.env = env  # what a job or driver on this cluster needs
        self.process = process
        self.tmp = tmp

    def check_alive(self) -> None:
        """``ray start --block`` exits when any of the head's processes dies: then say which, with
        the end of its logs, instead of letting the test wait for CPUs that are gone."""
        if self.process.poll() is None:
            return
        logs = [self.tmp / "head.log", *(self.tmp / "session_latest" / "logs" / name for name in ("ray_process_exit.log", "raylet.err"))]
        tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs if log.is_file())
        raise RuntimeError(f"the test Ray head exited ({self.process.returncode}):\n{tails}")


@pytest.fixture(scope="session")
def s3_server():
    process, log, server = s3.start(BIN, free_port())
    try:
        wait_http(server.endpoint, 60, process, log)
        yield server
    finally:
        stop_group(process, grace=10)


@pytest.fixture
def s3_bucket(s3_server, monkeypatch):
    """``s3://<a new bucket>``, with this process's environment pointing at the local S3."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return f"s3://{s3_server.create_bucket()}"


@pytest.fixture(scope="session")
def ray_head(s3_server):
    tmp = Path(tempfile.mkdtemp(prefix="f2r-", dir="/tmp"))
    port, dashboard_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        **s3_server.env,
        "RAY_TMPDIR": str(tmp),
        # A loopback cluster of this test run only.
        "RAY_AUTH_MODE": "disabled",
        # Its processes (e.g. Ray Train's placement-group cleaner, which connects by itself) must
        # find this cluster even when another one runs on the host.
        "RAY_ADDRESS": f"127.0.0.1:{port}",
        # Ray Train's controller polls its workers every 2 s by default: each fit then waits
        # ~6 s more to start and finish (measured: 17.8 s vs 11.3 s per one-epoch fit here).
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = tmp / "head.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "ray"), "start", "--head", "--block",
                "--node-ip-address=127.0.0.1", f"--port={port}",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--metrics-export-port={metrics_port}",
                "--num-cpus=2", "--num-gpus=0", "--disable-usage-stats",
                f"--temp-dir={tmp}",
            ],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    try:
        wait_http(f"{dashboard}/api/version", 120, process, log)
        gcs = f"127.0.0.1:{port}"
        yield RayHead(gcs, dashboard, metrics_port, {"RAY_ADDRESS": gcs, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": str(tmp)}, process, tmp)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_group(process, grace=30)


@pytest.fixture(scope="session")
def ray_connected(ray_head):
    """This pytest process as a driver of the shared head."""
    import ray

    os.environ.update(ray_head.env)
    if not ray.is_initialized():
        ray.init(address=ray_head.gcs_address, log_to_driver=True)
    return ray_head


def cluster_leftovers(dashboard_url: str) -> list[str]:
    """Submitted jobs still running and placement groups still held on the head: what would keep
    its CPUs. (The pytest process is a driver of the head too: not a submitted job.)"""
    from ray.job_submission import JobStatus, JobSubmissionClient, JobType
    from ray.util.state import list_placement_groups

    jobs = [
        f"job {job.submission_id} {job.status.value}"
        for job in JobSubmissionClient(dashboard_url).list_jobs()
        if job.type == JobType.SUBMISSION and job.status in (JobStatus.PENDING, JobStatus.RUNNING)
    ]
    groups = [
        f"placement group {group.placement_group_id} {group.state} ({group.name or 'unnamed'})"
        for group in list_placement_groups(address=dashboard_url, filters=[("state", "!=", "REMOVED")])
    ]
    return jobs + groups


@pytest.fixture(autouse=True)
def cluster_left_idle(request):
    """A test on the shared head leaves it idle. Its 2 CPUs are all there is: a sweep or placement
    group left behind by a failed test would make every later test wait forever for them, and the
    run would end in a CI timeout that names no test. This names the test that left them."""
    head = request.getfixturevalue("ray_head") if "ray_head" in request.fixturenames else None
    if head is not None:
        head.check_alive()
    yield
    if head is None:
        return
    head.check_alive()
    deadline = time.monotonic() + 60  # Ray Train and Tune release their groups asynchronously
    while (leftovers := cluster_leftovers(head.dashboard_url)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not leftovers, "the test left work on the shared Ray head: " + "; ".join(leftovers)


@pytest.fixture(scope="session")
def mlflow_server():
    tmp = Path(tempfile.mkdtemp(prefix="f2r-mlflow-", dir="/tmp"))
    port = free_port()
    log = tmp / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                "--artifacts-destination", str(tmp / "artifacts"),
                "--workers", "1",
            ],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", 120, process, log)
        yield url
    finally:
        stop_group(process, grace=10)


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m
def pytest_collection_modifyitems(items):
    """Every test under this folder is marked ``integration`` (a ``pytestmark`` in a conftest marks
    nothing), so ``pytest -m "not integration"`` runs the unit tests alone.

    The unit tests, then the autoscaling-cluster test first of the integration tests: it starts
    a Ray cluster of its own and stops it before the shared head starts. (Two clusters at once on
    2 cores would slow both; Ray Train's placement-group cleaner also connects to whichever
    cluster RAY_ADDRESS names.)"""
    def here(item) -> bool:
        return Path(str(item.fspath)).resolve().is_relative_to(HERE)

    for item in items:
        if here(item):
            item.add_marker(pytest.mark.integration)

    def order(item) -> int:
        if here(item):
            return 1 if item.module.__name__ == "test_autoscaling_cluster" else 2
        return 0

    items.sort(key=order)
