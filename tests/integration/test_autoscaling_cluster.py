"""What users run on an autoscaling cloud cluster, on this machine, with its faults:

``ray job submit --address http://127.0.0.1:<dashboard> --working-dir local://$PWD -- python
jobs/sweep.py --preset smoke output_dir=s3://…`` on cluster/local-autoscaling.yaml (a head with 0 CPUs, worker
nodes added and removed by Ray's autoscaler, token auth on), logging as a non-admin user to an
``mlflow server`` with basic auth, runs and users in PostgreSQL, artifacts in S3; Ray Train and
Tune storage in S3 too. While the sweep runs, a worker node is killed (its raylet and every
process under it), the MLflow server restarted, and the job's driver killed and the same command
submitted again.

Asserted from Ray's state API and the MLflow server (not from our logs): workers were launched by
the job's demand and removed after it; every stage ran on worker nodes (each stage run's
``fake2real.node_ids`` tag); the stage on the killed node resumed from its checkpoint on another;
every cell, trial and stage is in MLflow exactly once; finished trials were not run again.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from mlflow.tracking import MlflowClient

from cluster_stack import AutoscalingCluster, MLflowServer, Postgres, host_address
from helpers import BIN, REPO, free_port
from fake2real.presets import PRESETS
from fake2real.track.names import CHECKPOINT_TAG, LEVEL_TAG, NODES_TAG, PARENT_TAG, SELECTED_TAG, STAGE, TRIAL_TAG

pytestmark = pytest.mark.integration

EXPERIMENT, JOB_USER = "cluster", "fake2real-jobs"
FIRST, SECOND = "cluster-first", "cluster-second"
TRIALS = PRESETS["smoke"]["sweep"]["search"]["num_samples"]
EPOCHS = 5  # every trial trains all of them (no ASHA): a window to kill a node mid-stage
IDLE_TIMEOUT_S = 30  # cluster/local-autoscaling.yaml: idle_timeout_minutes 0.5
WORKERS = 2  # per stage (the smoke preset has one)


@dataclass
class Stack:
    cluster: AutoscalingCluster
    mlflow: MLflowServer
    bucket: str


@pytest.fixture(scope="module")
def stack(s3_server):
    postgres = Postgres(free_port()).start()
    servers = []
    try:
        bucket = s3_server.create_bucket()
        mlflow = MLflowServer(
            host_address(), free_port(),
            postgres.database("mlflow", "mlflow", secrets.token_hex(12)),
            postgres.database("mlflow_users", "mlflow_users", secrets.token_hex(12)),
            f"s3://{bucket}/mlflow-artifacts", s3_server.env,
        )
        servers.append(mlflow)
        mlflow.start()
        # The nodes' environment, as cloud nodes get it: the job user's MLflow credentials (not the
        # admin's) and the object store's.
        cluster = AutoscalingCluster(free_port(), free_port(), {**s3_server.env, **mlflow.job_user(JOB_USER, EXPERIMENT)})
        servers.append(cluster)
        cluster.start()
        yield Stack(cluster, mlflow, bucket)
    finally:
        for server in reversed(servers):
            server.stop()
        postgres.stop()


def ray_job(args: list[str], env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    # The head's job agent registers some seconds after the dashboard answers: until then Ray
    # refuses the submission outright, before running anything.
    for _ in range(6):
        completed = subprocess.run([str(BIN / "ray"), "job", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
        if "No available agent to submit job" not in completed.stderr:
            return completed
        time.sleep(10)
    return completed


def wait_for(condition, timeout: float, what: str, check=lambda: None, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        check()
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(poll)
    return value


def runs_of(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs([experiment.experiment_id], max_results=5000)


def test_the_sweep_on_an_autoscaling_cluster_survives_its_faults(stack, s3_server, monkeypatch):
    cluster, mlflow = stack.cluster, stack.mlflow
    for key, value in {**mlflow.admin_env, **s3_server.env}.items():
        monkeypatch.setenv(key, value)  # this test reads MLflow as the admin, and the bucket
    client = MlflowClient(tracking_uri=mlflow.url)
    env = {**os.environ, **cluster.client_env}
    out = f"s3://{stack.bucket}/fake2real"
    sweep = [
        # The repository in place (local://): every node of this cluster already has it. An uploaded
        # working dir (--working-dir .) is unpacked again by each node that joins, into the folder
        # all nodes here share, under the running driver's feet (cluster/README.md).
        "--address", cluster.dashboard_url, "--working-dir", f"local://{REPO}", "--",
        "python", "jobs/sweep.py", "--preset", "smoke", f"output_dir={out}", f"tracking.experiment={EXPERIMENT}",
        "train.max_failures=2", f"train.real.epochs={EPOCHS}", f"sweep.search.min_epochs={EPOCHS}", "sweep.search.asha=false",
        # Two workers per stage: a TorchTrainer's worker group on the node that is killed (DDP's path).
        f"train.num_workers={WORKERS}",
    ]

    def job_alive():
        status = cluster.job_status(FIRST)
        if status not in ("PENDING", "RUNNING"):
            pytest.fail(f"the sweep ended early ({status}):\n" + cluster.job_logs(FIRST)[-6000:])

    assert cluster.alive_workers() == []  # the head alone, 0 CPUs: only the job's demand adds nodes
    submitted_at, submitted_wall = time.monotonic(), time.time()
    submitted = ray_job(["submit", "--no-wait", "--submission-id", FIRST, *sweep], env)
    assert submitted.returncode == 0, submitted.stderr[-2000:]
    wait_for(cluster.alive_workers, 300, "worker node", job_alive)
    first_worker_s = time.monotonic() - submitted_at

    # (a) A worker node dies while a trial's stage trains on it, after its first checkpoint.
    def training_trial_stage():
        stages = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                                    filter_string="attributes.run_name LIKE '%-trial%/stage2_real' and attributes.status = 'RUNNING'")
        # At least two epochs left (epoch counts from 0): the kill lands mid-stage, not at its end.
        return next((run for run in stages if NODES_TAG in run.data.tags and 0 <= run.data.metrics.get("epoch", -1) <= EPOCHS - 3), None)

    victim = wait_for(training_trial_stage, 900, "trial stage with a checkpointed epoch and two to go", job_alive, poll=0.5)
    killed_node = victim.data.tags[NODES_TAG].split(",")[0]
    cluster.kill_node(killed_node)
    wait_for(lambda: any(n.node_id == killed_node and n.state == "DEAD" for n in cluster.nodes()), 120, f"death of node {killed_node}")

    # (c) The MLflow server restarts once that stage trains again on another node (clients retry,
    # bounded). Not at once: a node starting takes both cores for a while, and so would the server.
    def victim_state():
        run = client.get_run(victim.info.run_id)
        return f"victim {run.info.run_name} {run.info.status} {run.data.tags.get(NODES_TAG)} epoch {run.data.metrics.get('epoch')}"

    def alive_and_victim():
        try:
            job_alive()
        except BaseException:
            print(f"[cluster test] {victim_state()}; nodes {[(n.node_id[-5:], n.state) for n in cluster.nodes()]}", flush=True)
            raise

    wait_for(lambda: len(client.get_run(victim.info.run_id).data.tags[NODES_TAG].split(",")) >= 2, 600,
             "restart of the killed stage on another node", alive_and_victim)
    restart_started = time.monotonic()
    mlflow.stop()
    time.sleep(5)
    mlflow.start(timeout=300)
    mlflow_restart_s = time.monotonic() - restart_started

    # (b) The driver dies once the first cell is done and a trial of the second has finished.
    # The moment lasts from the second cell's first finished trial to its search's end, which can
    # be a second or two when its trials finish together: one MLflow query, then the bucket (the
    # quick read, last), polled often.
    def second_cell_has_a_finished_trial():
        runs = runs_of(client)
        cells = {r.info.run_name: r.info.run_id for r in runs if r.data.tags.get(LEVEL_TAG) == "cell"}
        if len(cells) < 2:
            return False
        second = cells["cell-r0.9-ffr-groupdro"]
        if not any(r.info.status == "FINISHED" for r in runs if r.data.tags.get(PARENT_TAG) == second and TRIAL_TAG in r.data.tags):
            return False
        done = [key for key in s3_server.keys(stack.bucket, "fake2real/runs/tune/") if key.endswith("/best.json")]
        return len(done) == 1

    wait_for(second_cell_has_a_finished_trial, 900, "finished trial in the second cell", job_alive, poll=0.2)
    stopped = ray_job(["stop", "--address", cluster.dashboard_url, FIRST], env)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    finished_before = {
        r.info.run_id: len(client.get_metric_history(r.info.run_id, "train/loss"))
        for r in runs_of(client) if r.data.tags.get(LEVEL_TAG) == STAGE and r.info.status == "FINISHED"
    }

    completed = ray_job(["submit", "--submission-id", SECOND, *sweep], env)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "| ffr | erm | 1 |" in completed.stdout and "| ffr | groupdro | 1 |" in completed.stdout
    job_done_at = time.monotonic()

    # Workers leave once idle: back to the head alone.
    wait_for(lambda: not cluster.alive_workers(), IDLE_TIMEOUT_S + 90, "scale-down to 0 workers")
    scale_down_s = time.monotonic() - job_done_at

    # Ray's record: workers launched for the job (none before), the killed one dead, none left.
    nodes = cluster.nodes()
    workers = [node for node in nodes if not node.is_head_node]
    assert len(workers) >= 2 and all(node.state == "DEAD" for node in workers)
    # cpu_worker nodes (2 CPUs) that the fake provider launched (its ids: f…f then a launch count
    # from 00001; the head is 00000), after the submission.
    assert all(node.resources_total.get("CPU") == 2 and re.fullmatch(r"f{51}0*[1-9]\d*", node.node_id) for node in workers)
    assert all(node.start_time_ms / 1000 >= submitted_wall for node in workers)
    worker_ids = {node.node_id for node in workers}
    head_ids = {node.node_id for node in nodes if node.is_head_node}
    assert killed_node in worker_ids

    runs = runs_of(client)
    stages = [r for r in runs if r.data.tags.get(LEVEL_TAG) == STAGE]
    # Every stage ran on worker nodes, none on the head; all of them finished.
    for run in stages:
        ran_on = set(run.data.tags[NODES_TAG].split(","))
        assert ran_on <= worker_ids and not ran_on & head_ids, run.info.run_name
        assert run.info.status == "FINISHED" and run.data.tags[CHECKPOINT_TAG].startswith("s3://"), run.info.run_name
    # The stage on the killed node went on elsewhere, from its checkpoint.
    resumed = client.get_run(victim.info.run_id)
    assert killed_node in resumed.data.tags[NODES_TAG].split(",") and len(resumed.data.tags[NODES_TAG].split(",")) >= 2
    assert resumed.data.metrics["resumed_from_epoch"] >= 1
    # Stages finished before the driver died were not trained again: not one epoch more.
    assert {run_id: len(client.get_metric_history(run_id, "train/loss")) for run_id in finished_before} == finished_before

    # Each sweep, cell, trial and stage once: nothing lost or doubled by the restarts.
    names = Counter(r.info.run_name for r in runs)
    assert [name for name, count in names.items() if count > 1] == []
    sweeps = [r for r in runs if r.info.run_name == "sweep-smoke"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    cells = {r.info.run_name: r for r in runs if r.data.tags.get(PARENT_TAG) == sweeps[0].info.run_id}
    assert sorted(cells) == ["cell-r0.9-ffr-erm", "cell-r0.9-ffr-groupdro"]
    for cell in cells.values():
        assert cell.info.status == "FINISHED" and cell.data.metrics["search/trials"] == TRIALS
        assert {"test/worst_group_accuracy", "val/worst_group_accuracy", "search/trial_epochs"} <= set(cell.data.metrics)
        assert "test/worst_group_accuracy_ci95" not in cell.data.metrics and "selected.lr" in cell.data.params  # one seed
        below = [r for r in runs if r.data.tags.get(PARENT_TAG) == cell.info.run_id]
        # One MLflow run per Tune trial, though a node and the driver died: runs are found again by key.
        trials = [r for r in below if TRIAL_TAG in r.data.tags]
        assert len(trials) == TRIALS and len({r.data.tags[TRIAL_TAG] for r in trials}) == TRIALS
        assert all(r.info.status == "FINISHED" for r in trials)
        selected = [r for r in below if r.data.tags.get(SELECTED_TAG) == "true"]
        assert [r.info.run_name for r in selected] == [cell.info.run_name.removeprefix("cell-") + "-seed0"]
        assert "test/worst_group_accuracy" in selected[0].data.metrics and CHECKPOINT_TAG in selected[0].data.tags
    # FFR's stage 1 is shared by both cells and every trial: one run, one Ray Train run.
    assert len([r for r in runs if r.info.run_name.endswith("/stage1_synthetic")]) == 1
    keys = s3_server.keys(stack.bucket)
    assert len({key.split("/")[2] for key in keys if key.startswith("fake2real/runs/stage1_synthetic-")}) == 1
    # Tune's trials: no trial added by the resubmission or the node's death.
    assert len({"/".join(key.split("/")[:5]) for key in keys if re.match(r"fake2real/runs/tune/cell-\w+/_trial_", key)}) == 2 * TRIALS

    # Artifacts went through the server to S3; checkpoints, tables and Tune's state are in S3.
    artifacts = {a.path for a in client.list_artifacts(sweeps[0].info.run_id)}
    assert {"results.md", "results.csv", "results.png"} <= artifacts
    assert any(key.startswith("mlflow-artifacts/") and key.endswith("/results.png") for key in keys)
    assert any(key.startswith("fake2real/runs/tune/") and key.endswith("/best.json") for key in keys)
    assert sum(key.startswith("fake2real/runs/") and "/checkpoint_" in key for key in keys) >= len(stages)

    # The jobs logged as a user that is no admin.
    from mlflow.server import get_app_client

    assert get_app_client("basic-auth", tracking_uri=mlflow.url).get_user(JOB_USER).is_admin is False
    print("[cluster figures] " + json.dumps({
        "submit_to_first_worker_s": round(first_worker_s, 1),
        "scale_down_after_job_s": round(scale_down_s, 1),
        "workers_launched": len(workers),
        "mlflow_down_s": round(mlflow_restart_s, 1),
    }))
