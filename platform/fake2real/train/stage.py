"""One stage, identified by a hash of its spec: a ``TorchTrainer`` for several workers (DDP), the
loop in one process for a single worker (``train/local.py``: no worker group to start).

The run's name is that hash, so running the same stage again resumes it from its latest
checkpoint (Ray Train V2 restores by ``(storage_path, name)``; a single-worker stage by the
checkpoint its run folder names), and a finished stage — marked by ``stage_result.json`` — is
reused without training. The next stage receives the selected checkpoint's URI, never a
directory to scan.

The marker names that checkpoint relative to the runs folder, so a workspace moved, copied or
reached from another checkout finds its stages and hands over its own checkpoints. A stage
stored before keys were relative (absolute locations in its key and marker) is found by its
legacy key — with the workspace where it is now, or where its old markers say it was — and
adopted: a marker under its key now names the old run's checkpoint (docs/design.md §5).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyarrow.fs

from fake2real.data.storage import Location
from fake2real.interrupt import off_main_thread
from fake2real.train.spec import Resources, StageSpec
from fake2real.train.stage_record import StageResult, finished_stage, last_component, mark_done

if TYPE_CHECKING:
    import ray.train

# Ray Train's controller takes a report at its next poll of the workers, every 2 s by default: on
# small stages that was most of each epoch (benchmarks/stage_overhead.py: 2.1 s per report, 0.22 s
# at 0.2 s). Set in the process that starts the trainer, which passes it on to the controller; a
# value the user set is kept.
CONTROLLER_POLL_ENV, CONTROLLER_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2"
# Ray Train's preemption watcher is one more actor per fit, and its start logs a core_worker
# error line ("PreemptionWatcher … max_restarts > 0") that means nothing to a user.
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"

# Where a single-worker stage runs (train/local.py): in this process, which holds its resources
# (a search trial's), or as a Ray task that holds them.
IN_PROCESS, AS_TASK = "in_process", "task"


def checkpoint_uri(checkpoint: ray.train.Checkpoint) -> str:
    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


def run_stage(spec: StageSpec, resources: Resources, storage: str, callbacks: list | None = None, report_to_tune: bool = False,
              single_worker: str = AS_TASK) -> StageResult:
    """Train the stage (or resume it, or reuse its finished result); ``report_to_tune``: its
    reports are a search trial's results; ``single_worker``: where a one-worker stage runs."""
    done = finished_stage(spec, storage)
    if done is not None:
        if done.legacy_key is not None:  # from now on found by its key, wherever the workspace goes
            mark_done(spec, Location(storage), done)
        return done
    callbacks = list(callbacks or [])
    # Imported here: planning a sweep reads a stage's record without torch or Ray Train.
    from fake2real.train.local import run_local, run_stage_task

    if resources.num_workers == 1:
        if report_to_tune and single_worker != IN_PROCESS:
            raise ValueError("a single-worker stage reports to Tune from its trial's own process (single_worker=IN_PROCESS)")
        if single_worker == IN_PROCESS:
            metrics, checkpoint = run_local(spec, resources, storage, callbacks, report_to_tune)
        else:
            metrics, checkpoint = run_stage_task(spec, resources, storage, callbacks)
    else:
        metrics, checkpoint = _fit(spec, resources, storage, callbacks, report_to_tune)
    outcome = StageResult(key=spec.key(), checkpoint_uri=checkpoint, metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    mark_done(spec, Location(storage), outcome)
    return outcome


def _fit(spec: StageSpec, resources: Resources, storage: str, callbacks: list, report_to_tune: bool) -> tuple[dict, str]:
    """The stage on a ``TorchTrainer``'s worker group: (the selected model's metrics, its checkpoint's URI)."""
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from fake2real.train.loop import train_loop_per_worker

    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)
    os.environ.setdefault(PREEMPTION_WATCHER_ENV, "0")
    if report_to_tune:  # created in the trial's process, called in Ray Train's controller
        from ray.tune.integration.ray_train import TuneReportCallback

        callbacks.append(TuneReportCallback())
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"spec": spec, "resources": resources},
        scaling_config=ScalingConfig(
            num_workers=resources.num_workers,
            use_gpu=resources.use_gpu,
            resources_per_worker={"CPU": resources.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if resources.use_gpu else "gloo"),
        run_config=RunConfig(
            name=spec.run_name,
            storage_path=storage,
            # Kept by recency: the latest holds the resume state and the best model so far.
            checkpoint_config=CheckpointConfig(num_to_keep=resources.checkpoints_to_keep),
            # A dead worker restarts the worker group from the latest checkpoint (loop.py resumes).
            failure_config=FailureConfig(max_failures=resources.max_failures),
            # Ray Train logs every report at INFO; MLflowStageCallback prints a line per epoch instead.
            logging_config=LoggingConfig(log_level="WARNING"),
            callbacks=callbacks,
        ),
    )
    # Not on the main thread: Ray Train would put its own SIGINT handler there (interrupt.py).
    result = off_main_thread(trainer.fit)
    # Named as a reused stage names it (Location's spelling of the runs folder, whatever Ray's):
    # the next stage's key is the same whether this one was trained now or found.
    return result.metrics, str(Location(storage) / spec.run_name / last_component(checkpoint_uri(result.checkpoint)))
