"""One stage on Ray Train: a ``TorchTrainer`` identified by a hash of its spec.

The run's name is that hash, so running the same stage again resumes it from its latest
checkpoint (Ray Train V2 restores by ``(storage_path, name)``), and a finished stage — marked by
``stage_result.json`` — is reused without training. The next stage receives the selected
checkpoint's URI, never a directory to scan.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import pyarrow.fs
import ray.train
from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from fake2real.data.storage import Location
from fake2real.data.markers import read_marker, write_marker
from fake2real.interrupt import off_main_thread
from fake2real.train.loop import train_loop_per_worker
from fake2real.train.spec import Resources, StageSpec

RESULT_FILE = "stage_result.json"
# Ray Train's controller takes a report at its next poll of the workers, every 2 s by default: on
# small stages that was most of each epoch (benchmarks/stage_overhead.py: 2.1 s per report, 0.22 s
# at 0.2 s). Set in the process that starts the trainer, which passes it on to the controller; a
# value the user set is kept.
CONTROLLER_POLL_ENV, CONTROLLER_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2"


@dataclass
class StageResult:
    key: str
    checkpoint_uri: str
    metrics: dict = field(default_factory=dict)
    reused: bool = False


def checkpoint_uri(checkpoint: ray.train.Checkpoint) -> str:
    if isinstance(checkpoint.filesystem, pyarrow.fs.LocalFileSystem):
        return checkpoint.path
    return f"{checkpoint.filesystem.type_name}://{checkpoint.path}"


def finished_stage(spec: StageSpec, storage: str) -> StageResult | None:
    """The stage's result when it finished earlier (its done marker), else None."""
    done = read_marker(Location(storage) / spec.run_name / RESULT_FILE)
    return StageResult(**(done | {"reused": True})) if done is not None else None


def run_stage(spec: StageSpec, resources: Resources, storage: str, callbacks: list | None = None) -> StageResult:
    """Train the stage (or resume it, or reuse its finished result)."""
    done = finished_stage(spec, storage)
    if done is not None:
        return done
    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)
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
            callbacks=callbacks or [],
        ),
    )
    # Not on the main thread: Ray Train would put its own SIGINT handler there (interrupt.py).
    result = off_main_thread(trainer.fit)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    outcome = StageResult(key=spec.key(), checkpoint_uri=checkpoint_uri(result.checkpoint), metrics=metrics)
    write_marker(Location(storage) / spec.run_name / RESULT_FILE, asdict(outcome))
    return outcome
