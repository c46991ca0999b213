"""Driver-side cluster checks without a cluster: what a request lacks, a GPU no node type can
provide refused at once, an autoscaler's GPU waited for (bounded), a node-local tracking URI
refused on a multi-node cluster."""

from __future__ import annotations

import pytest

from fake2real import runtime
from fake2real.errors import ClusterError, ConfigError


def test_missing_resources():
    assert runtime.missing_resources({"CPU": 2, "GPU": 1}, {"CPU": 2.0}) == {"GPU": 1}
    assert runtime.missing_resources({"CPU": 1.8}, {"CPU": 2.0}) == {}


def test_a_gpu_no_node_type_provides_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(runtime, "_autoscaler_max", lambda: None)
    with pytest.raises(ClusterError) as error:
        runtime.require_resources({"CPU": 2, "GPU": 2}, "training (train.use_gpu=true)", wait_s=600)
    assert str(error.value) == ("training (train.use_gpu=true) needs 2 CPU, 2 GPU, but the Ray cluster has 0 GPU and no "
                                "autoscaler node type provides more")


def test_an_autoscaler_gpu_is_waited_for_within_a_bound(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "_autoscaler_max", lambda: {"CPU": 64, "GPU": 8})
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(ClusterError, match=r"the autoscaler did not provide it within train.resource_wait_s=0.02 s$"):
        runtime.require_resources({"GPU": 1}, "training", wait_s=0.02, poll_s=0.01)
    assert "[cluster] training: waiting for the autoscaler to add 1 GPU" in capsys.readouterr().out
    calls = iter([{"CPU": 2.0}, {"CPU": 2.0, "GPU": 1.0}])
    monkeypatch.setattr(runtime.ray, "cluster_resources", lambda: next(calls))
    runtime.require_resources({"GPU": 1}, "training", wait_s=5, poll_s=0.01)  # the node arrived: go on


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
