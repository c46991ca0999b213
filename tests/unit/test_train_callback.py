"""The stage callback tags a stage's MLflow run with the Ray nodes its workers reported from,
across a worker-group restart on another node (the controller, and so the callback, survives it)
and across a new controller for the same run (a retried trial)."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from fake2real.track.names import NODE_ID_KEY, NODES_TAG
from fake2real.track.train_callback import MLflowStageCallback


def report(epoch: int, *nodes: str) -> list[dict]:
    return [{"epoch": epoch, "train/loss": 1.0, "val/worst_group_accuracy": 0.5, NODE_ID_KEY: node} for node in nodes]


def test_a_stage_run_names_every_node_it_ran_on(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run(client.create_experiment("callback")).info.run_id
    callback = MLflowStageCallback(uri, run_id, "real")

    callback.after_report(None, report(0, "node-a", "node-b"), None)
    callback.after_report(None, report(1, "node-b", "node-a"), None)
    assert client.get_run(run_id).data.tags[NODES_TAG] == "node-a,node-b"
    callback.after_report(None, report(2, "node-c", "node-b"), None)  # rank 0 restarted on node-c
    run = client.get_run(run_id)
    assert run.data.tags[NODES_TAG] == "node-a,node-b,node-c"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3]
    assert NODE_ID_KEY not in run.data.metrics and "epoch 3" in capsys.readouterr().out
    # The stage run again by a new controller (its trial retried): the nodes so far are kept.
    MLflowStageCallback(uri, run_id, "real").after_report(None, report(3, "node-d"), None)
    assert client.get_run(run_id).data.tags[NODES_TAG] == "node-a,node-b,node-c,node-d"
