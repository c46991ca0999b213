"""Train controller callbacks: each ``ray.train.report`` of a stage to its MLflow run (metrics,
and the Ray nodes its workers ran on as a tag), or to a JSON-lines file (benchmarks and tests read
a stage's epochs from it)."""

from __future__ import annotations

import json

import ray.train

from fake2real.track.mlflow_runs import log_metrics
from fake2real.track.names import NODE_ID_KEY, NODES_TAG


class MLflowStageCallback(ray.train.UserCallback):
    def __init__(self, tracking_uri: str, run_id: str, label: str):
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.label = label
        self._client = None
        self._nodes: list[str] = []

    def after_report(self, run_context, metrics, checkpoint):
        from mlflow.tracking import MlflowClient

        if self._client is None:
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            # A stage run again (its trial retried after its node died) keeps the nodes it ran on.
            self._nodes = [node for node in self._client.get_run(self.run_id).data.tags.get(NODES_TAG, "").split(",") if node]
        rank0 = metrics[0]
        nodes = [m[NODE_ID_KEY] for m in metrics if m.get(NODE_ID_KEY) and m[NODE_ID_KEY] not in self._nodes]
        if nodes:
            self._nodes.extend(dict.fromkeys(nodes))
            self._client.set_tag(self.run_id, NODES_TAG, ",".join(self._nodes))
        # The step is the number of epochs trained: 0 is the model the stage started from (its
        # "epoch" is -1). The final report (selected model) is logged one step after the last
        # epoch, so the UI's "latest" value of val/ and test/ metrics is the selected model's.
        log_metrics(self._client, self.run_id, rank0, step=int(rank0["epoch"]) + 1)
        # Progress, forwarded to the driver's console by Ray.
        if rank0.get("final"):
            what, extra = "selected model", f" test WGA {rank0['test/worst_group_accuracy']:.3f}"
        elif rank0.get("start"):
            what, extra = "start", ""
        else:
            what, extra = f"epoch {int(rank0['epoch']) + 1}", f" loss {rank0['train/loss']:.3f}"
        print(f"[{self.label}] {what}: val WGA {rank0['val/worst_group_accuracy']:.3f}{extra}", flush=True)


class MLflowGeneratorCallback(ray.train.UserCallback):
    """Each report of a generator's training to its MLflow run: the loss at its optimizer step,
    and the checkpoint's grid of samples as ``samples/step_<step>.png``; a progress line."""

    def __init__(self, tracking_uri: str, run_id: str, total_steps: int, samples_file: str):
        self.tracking_uri, self.run_id, self.total_steps, self.samples_file = tracking_uri, run_id, total_steps, samples_file
        self._client = None

    def after_report(self, run_context, metrics, checkpoint):
        import os
        import tempfile

        from mlflow.tracking import MlflowClient

        self._client = self._client or MlflowClient(tracking_uri=self.tracking_uri)
        rank0, step = metrics[0], int(metrics[0]["step"])
        log_metrics(self._client, self.run_id, {k: v for k, v in rank0.items() if k != "step"}, step=step)
        if checkpoint is not None:
            with checkpoint.as_directory() as directory, tempfile.TemporaryDirectory() as out:
                grid = os.path.join(directory, self.samples_file)
                if os.path.isfile(grid):
                    named = os.path.join(out, f"step_{step:06d}.png")
                    with open(grid, "rb") as source, open(named, "wb") as target:
                        target.write(source.read())
                    self._client.log_artifact(self.run_id, named, artifact_path="samples")
        print(f"[generator] step {step}/{self.total_steps}: loss {rank0['train/loss']:.4f} "
              f"({rank0['train/images_per_second_per_worker']:.0f} images/s per worker)", flush=True)


class ReportLog(ray.train.UserCallback):
    """Appends rank 0's metrics of every report to ``path`` as one JSON line."""

    def __init__(self, path):
        self.path = str(path)

    def after_report(self, run_context, metrics, checkpoint):
        with open(self.path, "a") as out:
            out.write(json.dumps(metrics[0]) + "\n")
