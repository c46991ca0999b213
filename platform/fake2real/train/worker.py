"""What one worker holds for a stage: its place in the worker group and the stage's data.

``Worker`` is the worker's rank, group size and device, and its ``Session``: how it reports and
finds the checkpoint to resume from. A Ray Train worker's session is Ray Train's (every worker
reports: the report is a barrier; rank 0 alone writes the checkpoint); a single-worker stage run in
a process of its own has a ``LocalSession`` (``train/local.py``). ``StageData`` is the stage's splits
as this worker reads them (decoded into memory, or streamed from ``stream_dir``), the evaluation
groups' names, and the groups the method sees on the training set: (y, b) for one table, (y, b, g)
for a mix of real and synthetic tables.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import ray
import ray.train
import ray.train.torch
import torch

from fake2real.data.table import group_name, read_info
from fake2real.track.names import NODE_ID_KEY
from fake2real.train.batches import BatchLoader
from fake2real.train.evaluation import all_reduce_sum, evaluate
from fake2real.train.methods import Reducer
from fake2real.train.spec import LoaderConfig, StageSpec
from fake2real.train.splits import Split, concat, read_split


class Session(Protocol):
    """Where a worker's reports go and its resume state comes from."""

    run_name: str  # the stage's run (its folder in the runs storage)

    def report(self, metrics: dict, checkpoint_dir: str | None) -> None: ...

    def checkpoint(self) -> ray.train.Checkpoint | None: ...  # the latest reported, when resuming

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module: ...  # on its device (DDP-wrapped with several workers)


class RayTrainSession:
    """A Ray Train worker's: ``ray.train.report``, the checkpoint Ray Train restored, ``prepare_model``."""

    @property
    def run_name(self) -> str:
        return ray.train.get_context().get_experiment_name()

    def report(self, metrics: dict, checkpoint_dir: str | None) -> None:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None)

    def checkpoint(self) -> ray.train.Checkpoint | None:
        return ray.train.get_checkpoint()

    def prepare(self, module: torch.nn.Module) -> torch.nn.Module:
        return ray.train.torch.prepare_model(module)


@dataclass(frozen=True)
class Worker:
    rank: int
    world: int
    device: torch.device
    session: Session

    @classmethod
    def current(cls) -> "Worker":
        """A Ray Train worker."""
        context = ray.train.get_context()
        return cls(context.get_world_rank(), context.get_world_size(), ray.train.torch.get_device(), RayTrainSession())

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def reducer(self) -> Reducer:
        return Reducer(world_size=self.world, sum=all_reduce_sum)

    def report(self, metrics: dict, files: dict[str, dict] | None = None) -> None:
        """Report ``metrics`` and this worker's node id, with a checkpoint of ``files`` (file name →
        what ``torch.save`` writes) when given."""
        metrics = {**metrics, NODE_ID_KEY: ray.get_runtime_context().get_node_id()}
        with tempfile.TemporaryDirectory() as directory:
            written = self.rank == 0 and files is not None
            for name, payload in (files or {}).items() if written else ():
                torch.save(payload, Path(directory) / name)
            self.session.report(metrics, directory if written else None)


@dataclass
class StageData:
    names: list[str]  # the (y, b) groups' names: evaluation's groups
    num_classes: int
    train: Split
    train_groups: torch.Tensor  # per training sample: the group the method sees
    num_train_groups: int
    loader: BatchLoader

    @classmethod
    def load(cls, spec: StageSpec, loader: LoaderConfig, cpus_per_worker: float, stream_dir: str | None, device: torch.device) -> "StageData":
        info = read_info(spec.eval_table)
        names = [group_name(y, b) for y in range(info.num_classes) for b in range(info.num_biases)]
        splits = {
            "train": concat([read_split(path, "train", info.num_biases, stream_dir) for path in spec.train_tables]),
            "val": read_split(spec.eval_table, "val", info.num_biases, stream_dir),
            "test": read_split(spec.eval_table, "test", info.num_biases, stream_dir),
        }
        workers = loader.workers if loader.workers is not None else max(0, int(cpus_per_worker) - 1)
        batches = BatchLoader(splits, device, workers, loader.prefetch_batches)
        train, mixed = splits["train"], len(spec.train_tables) > 1
        train_groups = train.source_groups(len(names)) if mixed else train.groups
        return cls(names, info.num_classes, train, train_groups, len(names) * (2 if mixed else 1), batches)

    def evaluate(self, model: torch.nn.Module, split: str, worker: Worker) -> dict:
        """``split``'s metrics, prefixed by its name, over the whole split (sharded over the workers)."""
        return evaluate(model, self.loader, split, self.names, split, worker.device, worker.rank, worker.world)
