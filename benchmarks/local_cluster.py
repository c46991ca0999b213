"""The smoke sweep on cluster/local-autoscaling.yaml (0..2 workers of 2 CPUs) against the same
cluster held at 1 fixed worker, with the cluster test's MLflow server (basic auth, PostgreSQL, S3
artifacts) and S3 storage. Measures the seconds from submission to the first worker node, the
sweep's wall time on each cluster, and the seconds from the job's end to 0 workers.

    .venv/bin/python benchmarks/local_cluster.py            # ~15 min on 2 cores; prints a JSON line
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "integration"), str(REPO / "platform")]

import s3  # noqa: E402
from cluster_stack import AutoscalingCluster, MLflowServer, Postgres, host_address  # noqa: E402
from helpers import BIN, free_port, stop_group, wait_http  # noqa: E402

EXPERIMENT, JOB_USER = "cluster-bench", "fake2real-jobs"

SWEEP = ["--preset", "smoke", "train.real.epochs=5", "sweep.search.min_epochs=5", "sweep.search.asha=false"]


def fixed_config(workers: int) -> Path:
    """cluster/local-autoscaling.yaml with its worker count held at ``workers``."""
    config = yaml.safe_load((REPO / "cluster" / "local-autoscaling.yaml").read_text())
    config["max_workers"] = workers
    config["available_node_types"]["cpu_worker"].update(min_workers=workers, max_workers=workers)
    path = Path(tempfile.mkdtemp(prefix="f2r-bench-")) / "fixed.yaml"
    # Keep the commented gcs_address line the cluster fixture fills in.
    text = yaml.safe_dump(config, sort_keys=False).replace("provider:\n", "provider:\n  # gcs_address: 127.0.0.1:6379\n", 1)
    path.write_text(text)
    return path


def run_sweep(cluster: AutoscalingCluster, out: str, fixed_workers: int) -> dict:
    if fixed_workers:  # wait for the fixed workers before the clock starts
        while len(cluster.alive_workers()) < fixed_workers:
            time.sleep(1)
    started = time.monotonic()
    entrypoint = " ".join(["python", "jobs/sweep.py", *SWEEP, f"output_dir={out}", f"tracking.experiment={EXPERIMENT}"])
    # The repository in place (local://): see cluster/README.md.
    job = cluster.api("/api/jobs/", {"entrypoint": entrypoint, "runtime_env": {"working_dir": f"local://{REPO}"}})["submission_id"]
    first_worker = None
    while cluster.job_status(job) in ("PENDING", "RUNNING"):
        if first_worker is None and cluster.alive_workers():
            first_worker = time.monotonic() - started
        time.sleep(1)
    wall = time.monotonic() - started
    if cluster.job_status(job) != "SUCCEEDED":
        raise SystemExit(f"the sweep {cluster.job_status(job)}:\n{cluster.job_logs(job)[-4000:]}")
    figures = {"sweep_wall_s": round(wall, 1)}
    if not fixed_workers:
        done = time.monotonic()
        while cluster.alive_workers():
            time.sleep(1)
        figures.update(submit_to_first_worker_s=round(first_worker, 1), scale_down_after_job_s=round(time.monotonic() - done, 1),
                       workers_launched=len([n for n in cluster.nodes() if not n.is_head_node]))
    return figures


def main() -> None:
    postgres = Postgres(free_port()).start()
    s3_process, s3_log, store = s3.start(BIN, free_port())
    mlflow = None
    figures = {}
    try:
        wait_http(store.endpoint, 60, s3_process, s3_log)
        os.environ.update(store.env)
        bucket = store.create_bucket()
        mlflow = MLflowServer(host_address(), free_port(), postgres.database("mlflow", "mlflow", secrets.token_hex(12)),
                              postgres.database("mlflow_users", "mlflow_users", secrets.token_hex(12)), f"s3://{bucket}/mlflow-artifacts", store.env)
        mlflow.start()
        job_env = mlflow.job_user(JOB_USER, EXPERIMENT)
        for name, config, fixed in (("autoscaling_0_to_2", REPO / "cluster" / "local-autoscaling.yaml", 0), ("fixed_1", fixed_config(1), 1)):
            cluster = AutoscalingCluster(free_port(), free_port(), {**store.env, **job_env}, config=config)
            try:
                cluster.start()
                figures[name] = run_sweep(cluster, f"s3://{bucket}/{name}", fixed)
                print(f"[bench] {name}: {figures[name]}", flush=True)
            finally:
                cluster.stop()
    finally:
        if mlflow is not None:
            mlflow.stop()
        stop_group(s3_process, grace=10)
        postgres.stop()
    print(json.dumps({"machine": f"{os.cpu_count()} CPUs", **figures}))


if __name__ == "__main__":
    main()
