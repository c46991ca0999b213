"""A cloud cluster's pieces on one machine, started and stopped by handle (never ``ray stop``):

- ``Postgres``: a PostgreSQL server of its own (initdb in a temporary folder, as the ``postgres``
  user when run as root), the MLflow server's backend and user store;
- ``MLflowServer``: ``mlflow server --app-name basic-auth`` on that database, artifacts in S3;
- ``AutoscalingCluster``: ``RAY_FAKE_CLUSTER=1 ray start --head`` with cluster/local-autoscaling.yaml
  and token authentication; the autoscaler starts and removes worker nodes on this machine.

Used by tests/integration/test_autoscaling_cluster.py and benchmarks/local_cluster.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from helpers import BIN, REPO, stop_group, wait_http


def host_address() -> str:
    """This machine's address on its network (a cloud head's private address): MLflow is reached
    there, not at a loopback address the platform refuses on a multi-node cluster."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent: picks the outgoing interface
            return sock.getsockname()[0]
        except OSError:  # no route at all: the host name's address
            return socket.gethostbyname(socket.gethostname())


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or [Path(p) for p in [shutil.which("initdb")] if p]
    if not found:
        raise RuntimeError("PostgreSQL's server (initdb, postgres) is not installed: .ci/run installs it (apt-get install postgresql)")
    return found[-1].parent


class Postgres:
    """A throwaway PostgreSQL on 127.0.0.1:``port``; ``sql`` runs as its superuser over its socket."""

    def __init__(self, port: int):
        self.port = port
        self.bin = _postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="f2r-pg-", dir="/tmp"))
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "Postgres":
        data = self.dir / "data"
        subprocess.run([*self.as_owner, str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        with open(self.dir / "server.log", "w") as out:
            self.process = subprocess.Popen(
                [*self.as_owner, str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.dir),
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", str(self.dir), "-p", str(self.port)]).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{(self.dir / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        return self

    def sql(self, statement: str) -> None:
        subprocess.run([str(self.bin / "psql"), "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                        "-q", "-c", statement], check=True, capture_output=True)

    def database(self, name: str, owner: str, password: str) -> str:
        """A new database owned by a new login role; its SQLAlchemy URI."""
        self.sql(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE \"{name}\" OWNER \"{owner}\"")
        return f"postgresql://{owner}:{password}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=20, sig=signal.SIGINT)  # SIGINT: postgres's fast shutdown


class MLflowServer:
    """``mlflow server`` with basic auth, runs and users in PostgreSQL, artifacts in S3."""

    def __init__(self, host: str, port: int, backend_uri: str, auth_uri: str, artifacts: str, env: dict):
        self.url = f"http://{host}:{port}"
        self.host, self.port = host, port
        self.admin_password = secrets.token_hex(16)
        self.dir = Path(tempfile.mkdtemp(prefix="f2r-mlflow-", dir="/tmp"))
        # The user store's location is only read from this file; the admin's password from the environment.
        (self.dir / "auth.ini").write_text(
            f"[mlflow]\ndefault_permission = READ\ndatabase_uri = {auth_uri}\nadmin_username = admin\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        self.command = [
            str(BIN / "mlflow"), "server", "--host", host, "--port", str(port), "--workers", "1",
            "--backend-store-uri", backend_uri, "--artifacts-destination", artifacts, "--app-name", "basic-auth",
            "--allowed-hosts", f"{host}:{port},127.0.0.1:*,localhost:*",
        ]
        self.env = {
            **os.environ, **env,
            "MLFLOW_AUTH_CONFIG_PATH": str(self.dir / "auth.ini"),
            "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
        }
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def admin_env(self) -> dict:
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": self.admin_password}

    def start(self, timeout: float = 120) -> "MLflowServer":
        self.starts += 1
        log = self.dir / f"server-{self.starts}.log"
        with open(log, "w") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir, env=self.env, start_new_session=True)
        wait_http(f"{self.url}/health", timeout, self.process, log)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=20)
            self.process = None

    def job_user(self, username: str, experiment: str) -> dict:
        """A non-admin user allowed to edit ``experiment`` (cluster/mlflow_job_user.py, as a user
        runs it); the client environment the jobs get."""
        password = secrets.token_hex(16)
        subprocess.run([str(BIN / "python"), str(REPO / "cluster" / "mlflow_job_user.py"), username, experiment],
                       env={**os.environ, **self.admin_env, "FAKE2REAL_JOB_PASSWORD": password}, check=True, capture_output=True, text=True)
        return {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password}


class AutoscalingCluster:
    """cluster/local-autoscaling.yaml on this machine: a head with 0 CPUs, workers added and
    removed by Ray's autoscaler, token authentication on. ``env`` reaches every node's processes
    (as a cloud node's environment would); ``client_env`` is what ``ray job`` and drivers need."""

    def __init__(self, port: int, dashboard_port: int, env: dict, config: Path = REPO / "cluster" / "local-autoscaling.yaml"):
        self.tmp = Path(tempfile.mkdtemp(prefix="f2r-fc-", dir="/tmp"))
        self.port, self.dashboard_port = port, dashboard_port
        self.gcs_address = f"127.0.0.1:{port}"
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        # The user's file, with the head's port where the fake nodes look for it.
        text = config.read_text()
        assert "# gcs_address: 127.0.0.1:6379" in text
        (self.tmp / "autoscaling.yaml").write_text(text.replace("# gcs_address: 127.0.0.1:6379", f"gcs_address: {self.gcs_address}"))
        token = secrets.token_hex(32)
        self.client_env = {"RAY_ADDRESS": self.gcs_address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        self.env = {
            **os.environ, **env, **self.client_env,
            "RAY_TMPDIR": str(self.tmp),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "AutoscalingCluster":
        log = self.tmp / "head.log"
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [
                    str(BIN / "ray"), "start", "--head", "--block", "--num-cpus=0", "--num-gpus=0",
                    "--node-ip-address=127.0.0.1", f"--port={self.port}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
                    f"--autoscaling-config={self.tmp / 'autoscaling.yaml'}", f"--temp-dir={self.tmp}", "--disable-usage-stats",
                ],
                stdout=out, stderr=subprocess.STDOUT, env={**self.env, "RAY_FAKE_CLUSTER": "1"}, start_new_session=True,
            )
        # With token auth the dashboard answers 401 to a request without the token.
        wait_http(f"{self.dashboard_url}/api/version", 120, self.process, log, {"Authorization": f"Bearer {self.client_env['RAY_AUTH_TOKEN']}"})
        return self

    def api(self, path: str, body: dict | None = None):
        """The dashboard's REST API with this cluster's token: Ray's Python clients read the auth
        mode and token once per process, and this test process also talks to the suite's other head."""
        request = urllib.request.Request(
            f"{self.dashboard_url}{path}", data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.client_env['RAY_AUTH_TOKEN']}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def nodes(self) -> list[SimpleNamespace]:
        """Ray's own record of the cluster's nodes (alive and dead), from its state API."""
        found = self.api("/api/v0/nodes?limit=1000&detail=1")["data"]["result"]["result"]
        return [SimpleNamespace(**node) for node in found]

    def alive_workers(self) -> list[SimpleNamespace]:
        return [node for node in self.nodes() if node.state == "ALIVE" and not node.is_head_node]

    def job_status(self, submission_id: str) -> str:
        """PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED (Ray's job API)."""
        return self.api(f"/api/jobs/{submission_id}")["status"]

    def job_logs(self, submission_id: str) -> str:
        return self.api(f"/api/jobs/{submission_id}/logs")["logs"]

    def raylet_pid(self, node_id: str) -> int:
        """The pid of a fake node's raylet (each carries its node id in its environment)."""
        for pid in self._own_pids():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline.split(b"\0")[0].endswith(b"/raylet") and f"RAY_OVERRIDE_NODE_ID_FOR_TESTING={node_id}".encode() in environ:
                return pid
        raise LookupError(f"no raylet of node {node_id}")

    def kill_node(self, node_id: str) -> None:
        """A node's machine gone at once: SIGKILL to its raylet and every process under it (the
        node's workers, which would otherwise finish their task without their raylet)."""
        raylet = self.raylet_pid(node_id)
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, rest = stat.read_text().split(" (", 1)
                children.setdefault(int(rest.rsplit(") ", 1)[1].split()[1]), []).append(int(pid))
            except (OSError, ValueError, IndexError):
                continue
        doomed, queue = [], [raylet]
        while queue:
            pid = queue.pop()
            doomed.append(pid)
            queue.extend(children.get(pid, []))
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _own_pids(self) -> list[int]:
        """Every process of this cluster: they all carry its RAY_TMPDIR."""
        mark = f"RAY_TMPDIR={self.tmp}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mark in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace=30)
        for pid in self._own_pids():  # fake worker nodes the autoscaler had not removed yet
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
