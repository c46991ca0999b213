"""One stage on Ray Train: a ``TorchTrainer`` identified by a hash of its spec.

The run's name is that hash, so running the same stage again resumes it from its latest
checkpoint (Ray Train V2 restores by ``(storage_path, name)``), and a finished stage — marked by
``stage_result.json`` — is reused without training. The next stage receives the selected
checkpoint's URI, never a directory to scan.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import pyarrow.fs
import ray.train
from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from fake2real.train.loop import train_loop_per_worker

RESULT_FILE = "stage_result.json"


@dataclass(frozen=True)
class StageSpec:
    """Everything that determines what a stage computes (and so its identity)."""

    name: str
    train_tables: tuple[str, ...]  # one table, or real + synthetic for a mixed stage
    eval_table: str
    method: str
    method_params: dict
    model: str
    hparams: dict
    seed: int
    init_checkpoint: str | None = None
    pretrained: str | None = None  # a local torchvision weights file for the backbone
    keep_start: bool = False  # the starting model competes in selection (train.keep_start)

    def key(self) -> str:
        data = asdict(self)
        # Optional fields added later join the hash only when set: existing stages keep their names.
        for name, unset in (("pretrained", None), ("keep_start", False)):
            if data[name] == unset:
                del data[name]
        unset_hparams = {"lr_schedule": "constant", "freeze_bn": False}
        data["hparams"] = {k: v for k, v in data["hparams"].items() if unset_hparams.get(k, object()) != v}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Resources:
    """How a stage runs (not part of its key): workers, failures, checkpoints, data loading."""

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    max_failures: int = 0
    checkpoints_to_keep: int = 1
    loader: dict = field(default_factory=dict)  # config.LoaderConfig's fields; {} = its defaults
    compile: bool = False

    @classmethod
    def of(cls, train) -> "Resources":
        """From the config's ``train`` section."""
        return cls(train.num_workers, train.cpus_per_worker, train.use_gpu, train.max_failures, train.checkpoints_to_keep,
                   train.loader.model_dump(), train.compile)

    def request(self) -> dict[str, float]:
        """What the stage's worker group holds at once (Ray resource → amount)."""
        return {"CPU": self.num_workers * self.cpus_per_worker, **({"GPU": float(self.num_workers)} if self.use_gpu else {})}

    def describe(self) -> str:
        return f"training ({self.num_workers} worker(s) × {self.cpus_per_worker:g} CPU{' + 1 GPU' if self.use_gpu else ''}, train.*)"


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


def _result_location(storage: str, run_name: str) -> tuple[pyarrow.fs.FileSystem, str]:
    filesystem, root = pyarrow.fs.FileSystem.from_uri(storage)
    return filesystem, f"{root.rstrip('/')}/{run_name}/{RESULT_FILE}"


def finished_stage(spec: StageSpec, storage: str) -> StageResult | None:
    filesystem, path = _result_location(storage, f"{spec.name}-{spec.key()}")
    if filesystem.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return None
    with filesystem.open_input_stream(path) as stream:
        return StageResult(**(json.loads(stream.read()) | {"reused": True}))


def run_stage(spec: StageSpec, resources: Resources, storage: str, callbacks: list | None = None) -> StageResult:
    """Train the stage (or resume it, or reuse its finished result)."""
    done = finished_stage(spec, storage)
    if done is not None:
        return done
    run_name = f"{spec.name}-{spec.key()}"
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={**asdict(spec), "runtime": asdict(resources)},
        scaling_config=ScalingConfig(
            num_workers=resources.num_workers,
            use_gpu=resources.use_gpu,
            resources_per_worker={"CPU": resources.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if resources.use_gpu else "gloo"),
        run_config=RunConfig(
            name=run_name,
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
    result = trainer.fit()
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    outcome = StageResult(key=spec.key(), checkpoint_uri=checkpoint_uri(result.checkpoint), metrics=metrics)
    filesystem, path = _result_location(storage, run_name)
    with filesystem.open_output_stream(path) as stream:
        stream.write(json.dumps(asdict(outcome), indent=2, sort_keys=True).encode())
    return outcome
