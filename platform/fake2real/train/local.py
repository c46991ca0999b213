"""A single-worker stage without a Ray Train worker group: the loop runs in the calling process.

A ``TorchTrainer`` starts a controller and a worker group for every fit: 10.1 s of fixed cost per
stage on 2 cores (``benchmarks/stage_overhead.py``), for a stage whose one worker needs no
process group. A stage with one worker instead runs ``loop.run_worker`` where it is called:

- in a Tune trial's own process, which holds the stage's CPUs (and GPU) itself and is reused
  from trial to trial (``search.py``);
- elsewhere as a Ray task holding those resources (``run_stage_task``): Ray runs tasks in its
  pool of worker processes, so consecutive stages (stage 1, stage 2, the post-hoc step) find
  torch imported and the process warm, and the resources are free between tasks — a held actor
  would keep its CPU from the sweep's generation meanwhile.

What Ray Train did for such a stage, ``LocalSession`` does: each checkpoint is written to the
stage's run folder (``checkpoint_<n>``, the latest ``checkpoints_to_keep`` kept) and named in
``latest_checkpoint.json``, so a stage run again — after a killed driver, trial or node — resumes
from it by its key; each report goes to the stage's callbacks (MLflow, report logs) and, for a
search trial's stage, to Tune. A task whose worker or node died is retried ``train.max_failures``
times (Ray's task retries), resuming likewise.

Not Ray Train's local mode (``ScalingConfig(num_workers=0)``): it keeps checkpoints in memory and
ignores callbacks, the two things a stage needs, so this calls the loop directly instead.
"""

from __future__ import annotations

import pyarrow.fs
import ray
import ray.train
import torch

from fake2real.data.markers import read_marker, write_marker
from fake2real.data.storage import Location
from fake2real.errors import Fake2RealError
from fake2real.train.loop import run_worker
from fake2real.train.spec import Resources, StageSpec
from fake2real.train.worker import Worker

LATEST_FILE = "latest_checkpoint.json"


class LocalSession:
    """A single worker's reports: checkpoints written under ``runs/<run_name>``, metrics to the
    callbacks (``ray.train.UserCallback``s, called as Ray Train's controller calls them) and Tune."""

    def __init__(self, storage: str, run_name: str, device: torch.device, keep: int, callbacks: list, report_to_tune: bool):
        self.run_name, self.device, self.keep = run_name, device, keep
        self.callbacks, self.report_to_tune = callbacks, report_to_tune
        self.folder = Location(storage) / run_name
        latest = read_marker(self.folder / LATEST_FILE) or {"number": 0, "kept": []}
        self.number, self.kept = int(latest["number"]), list(latest["kept"])  # kept: oldest first
        self.last_metrics: dict = {}

    def _checkpoint(self, name: str) -> ray.train.Checkpoint:
        fs, path = (self.folder / name).filesystem()
        return ray.train.Checkpoint(path, filesystem=fs)

    def checkpoint(self) -> ray.train.Checkpoint | None:
        return self._checkpoint(self.kept[-1]) if self.kept else None

    @property
    def latest_uri(self) -> str:
        return str(self.folder / self.kept[-1])

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        return module.to(self.device)

    def report(self, metrics: dict, checkpoint_dir: str | None) -> None:
        checkpoint = self._write(checkpoint_dir) if checkpoint_dir else None
        self.last_metrics = metrics
        for callback in self.callbacks:
            callback.after_report(None, [metrics], checkpoint)
        if self.report_to_tune:
            from ray import tune

            tune.report(metrics)  # ASHA may end the trial here (Tune stops its thread at a report)

    def _write(self, directory: str) -> ray.train.Checkpoint:
        """``directory`` as the next checkpoint, named in the marker once complete; the oldest
        beyond ``keep`` removed after."""
        self.number += 1
        name = f"checkpoint_{self.number:06d}"
        fs, path = (self.folder / name).filesystem()
        fs.create_dir(path)
        fs.delete_dir_contents(path)  # a copy a killed run left half-written under this number
        pyarrow.fs.copy_files(directory, path, destination_filesystem=fs)
        self.kept.append(name)
        stale, self.kept = self.kept[: -self.keep], self.kept[-self.keep:]
        write_marker(self.folder / LATEST_FILE, {"number": self.number, "kept": self.kept})
        for old in stale:
            old_fs, old_path = (self.folder / old).filesystem()
            try:
                old_fs.delete_dir(old_path)
            except FileNotFoundError:
                pass
        return self._checkpoint(name)


def run_local(spec: StageSpec, resources: Resources, storage: str, callbacks: list, report_to_tune: bool = False) -> tuple[dict, str]:
    """Train (or resume) the single-worker stage in this process: (its last report's metrics — the
    selected model's —, its final checkpoint's URI)."""
    # Ray gives the process its GPU as the only visible one; the thread count is the stage's CPUs,
    # whatever the process ran before (a reused worker process or trial actor).
    device = torch.device("cuda", 0) if resources.use_gpu else torch.device("cpu")
    torch.set_num_threads(max(1, int(resources.cpus_per_worker)))
    session = LocalSession(storage, spec.run_name, device, resources.checkpoints_to_keep, callbacks, report_to_tune)
    run_worker(spec, resources, Worker(0, 1, device, session))
    return session.last_metrics, session.latest_uri


class StageFailed(ray.train.TrainingFailedError):
    """A single-worker stage failed with an error of its own (not a fake2real error): as a failed
    ``TorchTrainer.fit`` is, so the job ends with ``error: training failed: …`` (``cli._fail``)."""


def run_stage_task(spec: StageSpec, resources: Resources, storage: str, callbacks: list) -> tuple[dict, str]:
    """``run_local`` as a Ray task holding the stage's worker resources; retried (and resumed)
    when its worker process or node dies, ``resources.max_failures`` times."""
    task = ray.remote(
        num_cpus=resources.cpus_per_worker, num_gpus=1 if resources.use_gpu else 0,
        max_calls=0,  # the process stays for the next stage (Ray's default for GPU tasks is a new one each time)
        max_retries=resources.max_failures, retry_exceptions=False,
    )(run_local)
    try:
        return ray.get(task.remote(spec, resources, storage, callbacks))
    except ray.exceptions.RayTaskError as error:  # the stage's own error
        cause = error.cause
        if isinstance(cause, Fake2RealError):
            raise cause from None
        text = str(cause).strip()
        raise StageFailed(text.splitlines()[-1] if text else type(cause).__name__) from None
    except ray.exceptions.RayError as error:  # its process or node died once more than it may
        text = str(error).strip()
        raise StageFailed(f"{type(error).__name__}: {text.splitlines()[0] if text else ''}") from None
