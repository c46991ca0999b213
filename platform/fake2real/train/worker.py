"""What one Ray Train worker holds for a stage: its place in the worker group and the stage's data.

``Worker`` is the worker's rank, group size and device, and how it reports (every worker reports:
the report is a barrier; rank 0 alone writes the checkpoint). ``StageData`` is the stage's splits
as this worker reads them (decoded into memory, or streamed from ``stream_dir``), the evaluation
groups' names, and the groups the method sees on the training set: (y, b) for one table, (y, b, g)
for a mix of real and synthetic tables.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Worker:
    rank: int
    world: int
    device: torch.device

    @classmethod
    def current(cls) -> "Worker":
        context = ray.train.get_context()
        return cls(context.get_world_rank(), context.get_world_size(), ray.train.torch.get_device())

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
            checkpoint = None
            if self.rank == 0 and files is not None:
                for name, payload in files.items():
                    torch.save(payload, Path(directory) / name)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint)


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
