"""Driver-side cluster checks without a cluster: what a request lacks, a GPU no node type can
provide refused at once, an autoscaler's GPU waited for (bounded), a node-local tracking URI
refused on a multi-node cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake2real import runtime
from fake2real.errors import ClusterError, ConfigError


def test_missing_resources():
    assert runtime.missing_resources({"CPU": 2, "GPU": 1}, {"CPU": 2.0}) == {"GPU": 1}
    assert runtime.missing_resources({"CPU": 1.8}, {"CPU": 2.0}) == {}


def test_a_gpu_no_node_type_provides_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: None)
    with pytest.raises(ClusterError) as error:
        runtime.require_resources({"CPU": 1, "GPU": 1}, 2, "training (train.use_gpu=true)", wait_s=600)
    assert str(error.value) == ("training (train.use_gpu=true) needs 2 CPU, 2 GPU, but the Ray cluster has 0 GPU and no "
                                "autoscaler node type provides more")


@pytest.fixture
def autoscaler_requests(monkeypatch):
    """What ``ray.autoscaler.sdk.request_resources`` was asked, in order."""
    import ray.autoscaler.sdk

    asked = []
    monkeypatch.setattr(ray.autoscaler.sdk, "request_resources", lambda bundles: asked.append(bundles))
    return asked


def test_an_autoscaler_gpu_is_asked_for_and_waited_for_within_a_bound(monkeypatch, capsys, autoscaler_requests):
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: {"CPU": 64, "GPU": 8})
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(ClusterError, match=r"the autoscaler did not provide it within train.resource_wait_s=0.02 s$"):
        runtime.require_resources({"CPU": 4, "GPU": 1}, 2, "training", wait_s=0.02, poll_s=0.01)
    assert "[cluster] training: waiting for the autoscaler to add 6 CPU, 2 GPU" in capsys.readouterr().out
    # Asked for as the worker group's bundles (one node need not hold them all), then released.
    assert autoscaler_requests == [[{"CPU": 4, "GPU": 1}] * 2, []]
    calls = iter([{"CPU": 2.0}, {"CPU": 2.0, "GPU": 1.0}])
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: next(calls))
    runtime.require_resources({"GPU": 1}, 1, "training", wait_s=5, poll_s=0.01)  # the node arrived: go on
    assert autoscaler_requests[2:] == [[{"GPU": 1}], []]


@pytest.mark.parametrize(
    "uri, local",
    [("http://127.0.0.1:5000", True), ("http://localhost:5000", True), ("sqlite:////work/mlflow.db", True),
     ("file:///tmp/mlruns", True), ("http://mlflow.mlflow.svc:5000", False), ("https://mlflow.example.com", False)],
)
def test_node_local_tracking_uris(uri, local):
    assert (runtime.node_local_tracking(uri) is not None) == local


def test_a_loopback_tracking_uri_is_refused_on_a_multi_node_cluster(monkeypatch):
    monkeypatch.setattr(runtime.ray, "nodes", lambda: [{"Alive": True}, {"Alive": True}, {"Alive": False}])
    with pytest.raises(ConfigError, match=r"^config: tracking.uri: http://127.0.0.1:5000 cannot serve a 2-node Ray cluster: 127.0.0.1 is each"):
        runtime.check_tracking_for_cluster("http://127.0.0.1:5000")
    runtime.check_tracking_for_cluster("http://mlflow.mlflow.svc:5000")
    monkeypatch.setattr(runtime.ray, "nodes", lambda: [{"Alive": True}])
    runtime.check_tracking_for_cluster("http://127.0.0.1:5000")  # one node: its loopback is everyone's


def test_an_autoscaling_cluster_is_sized_by_what_it_can_grow_to(monkeypatch):
    from fake2real.config import build_config
    from fake2real.presets import PRESETS
    from fake2real.run.capacity import concurrent_trials

    # cluster/local-autoscaling.yaml before its first worker: a head with 0 CPUs.
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"memory": 1e9})
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: {"CPU": 4.0})
    assert runtime.cluster_capacity() == ({"CPU": 4.0, "memory": 1e9}, False)
    # A trial waiting on a TorchTrainer: 2 workers × 0.9 CPU + 0.1 for its driver.
    smoke = build_config(overrides=["train.num_workers=2"], base=PRESETS["smoke"])
    assert concurrent_trials(smoke) == 2
    # A single-worker trial trains in its own process: 0.9 CPU each.
    assert concurrent_trials(build_config(base=PRESETS["smoke"])) == 4
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: {})  # an autoscaler of unknown limits (KubeRay)
    assert runtime.cluster_capacity() == ({"memory": 1e9}, True)
    assert concurrent_trials(smoke) == 1
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: None)  # no autoscaler: what is there now
    with pytest.raises(ConfigError, match="a search trial needs 1.9 CPUs"):
        concurrent_trials(smoke)
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    assert concurrent_trials(smoke) == 1


def test_an_autoscaler_of_unknown_limits_is_waited_for_not_refused(monkeypatch, capsys, autoscaler_requests):
    monkeypatch.setattr(runtime, "autoscaler_max", lambda: {})
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(ClusterError, match="did not provide it within train.resource_wait_s"):
        runtime.require_resources({"GPU": 1}, 1, "training", wait_s=0.02, poll_s=0.01)
    assert autoscaler_requests == [[{"GPU": 1}], []]
    assert "waiting for the autoscaler to add 1 GPU" in capsys.readouterr().out


REPO = Path(__file__).resolve().parents[2]


def test_a_launcher_configs_limits():
    assert runtime.max_resources(REPO / "cluster" / "local-autoscaling.yaml") == {"CPU": 4.0}
    aws = runtime.max_resources(REPO / "cluster" / "aws.yaml")  # every GPU type at its max, within max_workers 8
    assert aws["GPU"] == 8 * 1 + 8 * 1 + 2 * 4 + 1 * 8 + 1 * 8 and aws["CPU"] == 8 * 16 + 8 * 16 + 2 * 48 + 96 + 192


def fake_process(proc: Path, pid: int, *args: str) -> None:
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes("\0".join(args).encode() + b"\0")


def test_the_autoscaling_config_is_found_from_the_heads_monitor(tmp_path):
    proc, config = tmp_path / "proc", tmp_path / "autoscaling.yaml"
    config.write_text("max_workers: 1\n")
    monitor = "/venv/lib/python3.11/site-packages/ray/autoscaler/_private/monitor.py"
    fake_process(proc, 10, "/venv/bin/python3", "-u", monitor, "--gcs-address=10.0.0.5:6380", f"--autoscaling-config={tmp_path / 'other.yaml'}")
    fake_process(proc, 11, "/venv/bin/raylet", "--gcs-address=10.0.0.5:6379", f"--autoscaling-config={config}")
    assert runtime.autoscaling_config_path(6379, proc) is None  # another cluster's monitor; not a monitor
    fake_process(proc, 12, "/venv/bin/python3", "-u", monitor, "--gcs-address=10.0.0.5:6379", f"--autoscaling-config={config}")
    assert runtime.autoscaling_config_path(6379, proc) == config
    fake_process(proc, 13, "/venv/bin/python3", "-u", monitor, "--gcs-address=10.0.0.6:7000")  # a plain head: no config
    assert runtime.autoscaling_config_path(7000, proc) is None


def test_the_local_cluster_a_job_starts_is_counted_as_ray_counts_it(monkeypatch):
    import ray._private.services as services
    import ray._private.utils as ray_utils

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(runtime.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    monkeypatch.setattr(ray_utils, "get_num_cpus", lambda **_: 3)  # a container's limit, say
    assert runtime.local_cluster_cpus() == 3.0
    # ray.init() would join a cluster: its size is known only once Ray is up.
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: "10.0.0.5:6379")  # a `ray start` on this machine
    assert runtime.local_cluster_cpus() is None
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    monkeypatch.setenv("RAY_ADDRESS", "ray-head:6379")
    assert runtime.local_cluster_cpus() is None
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setattr(runtime.ray, "is_initialized", lambda: True)
    assert runtime.local_cluster_cpus() is None
