"""One stage's training loop, run by every Ray Train worker (``train_loop_per_worker``), or by the
one worker of a single-worker stage in its own process (``run_worker``, ``train/local.py``).

Before the first epoch the model the stage starts from (random, ImageNet or the previous stage's)
is evaluated on validation and reported as the start (MLflow step 0). Each epoch: train
(``train/epoch.py``), evaluate per-group accuracy on the whole validation set (sharded over the
workers, counts summed, so no sample is dropped or counted twice), let the epoch compete for
selection (``train/selection.py``; the starting model competes only with ``keep_start``, as the
reference selects among trained epochs only), and report a checkpoint that holds both the resume
state and the best-so-far model. At the end the selected model is evaluated on validation and test
and reported with a final checkpoint whose ``best_model.pt`` is what the next stage starts from.
Every worker evaluates rank 0's weights and batch-norm statistics, the checkpoint's.

``freeze_bn`` (a stage hyperparameter; the reference searches it for FFR's stage 2) keeps the
batch-norm layers in eval mode while training: their running statistics stay those of the model
the stage started from (their affine weights still train, as in the reference).

A method may ask for a warm-up model first (JTT): after ``warmup_epochs`` the model and optimizer
start over and only later epochs compete for selection. A stage trains on one table, or on
several mixed (groups (y, b, g)).

Scale (train.loader, train.compile): splits are decoded into memory, or streamed from a local
memory-mapped copy when they would not fit (``train/splits.py``); batches are fetched ahead of
the step (``train/batches.py``). A restarted worker group (Ray Train's FailureConfig) resumes from
the latest checkpoint: model, optimizer, method state (sampler weights, GroupDRO's q, JTT's error
set) and best model; the epoch order and the learning-rate schedule are functions of (seed,
epoch, step), so they resume with the epoch.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import resource
import shutil
import socket
import tempfile
from pathlib import Path

import ray.train
import torch

from fake2real.errors import ConfigError, TrainingError
from fake2real.runtime import quiet_own_tracebacks
from fake2real.track.names import SELECTION_STEP
from fake2real.track.ray_metrics import TRAIN_IMAGES_PER_SECOND
from fake2real.train.epoch import EpochResult, Trainer
from fake2real.train.evaluation import broadcast_model_state
from fake2real.train.methods import get_method
from fake2real.train.models import Classifier, build_model
from fake2real.train.selection import Selection
from fake2real.train.spec import BEST_MODEL, RESUME_STATE, LoaderConfig, Resources, StageHparams, StageSpec
from fake2real.train.splits import decoded_bytes
from fake2real.train.worker import StageData, Worker


# Folders of streamed copies: <prefix><host>@<pid of the worker>-<random>.
STREAM_PREFIX = "fake2real-stream-"


def stream_splits(loader: LoaderConfig, parts: list[tuple[str, str]]) -> tuple[bool, float]:
    """Whether to stream the stage's splits, and the size of their decoded images in MiB."""
    size_mb = sum(decoded_bytes(table, split) for table, split in parts) / 2**20
    if loader.mode != "auto":
        return loader.mode == "stream", size_mb
    return size_mb > loader.memory_limit_mb, size_mb


def remove_orphaned_copies(root: str) -> None:
    """Streamed copies of this host's workers that died without cleaning up (killed, or their
    group restarted); a folder shared between hosts keeps the other hosts' copies."""
    for folder in Path(root).glob(f"{STREAM_PREFIX}{glob.escape(socket.gethostname())}@*-*"):
        pid = folder.name.rsplit("@", 1)[1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: checks the process exists, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def peak_memory_mb(device: torch.device) -> dict:
    """Peak host memory of this worker process (ru_maxrss, KiB on Linux) and of its GPU."""
    peaks = torch.tensor([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 0.0], dtype=torch.float64)
    if device.type == "cuda":
        peaks[1] = torch.cuda.max_memory_allocated(device) / 2**20
    # The most any worker used: peaks of the workers, not their sum.
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        peaks = peaks.to(device)
        torch.distributed.all_reduce(peaks, op=torch.distributed.ReduceOp.MAX)
    host, gpu = peaks.cpu().tolist()
    return {"memory/peak_host_mb": host, **({"memory/peak_gpu_mb": gpu} if device.type == "cuda" else {})}


def train_loop_per_worker(config: dict) -> None:
    """The stage ``config["spec"]`` (a ``StageSpec``) run with ``config["resources"]`` (``Resources``)
    by a Ray Train worker."""
    # Ray Train's per-report INFO line comes from a logger named by a file path (so LoggingConfig
    # misses it) through this worker's root logger; the controller callback prints a line per epoch.
    logging.getLogger().setLevel(logging.WARNING)
    quiet_own_tracebacks()  # a TrainingError here is the driver's one error line, not a traceback per worker
    run_worker(config["spec"], config["resources"], Worker.current())


def run_worker(spec: StageSpec, resources: Resources, worker: Worker) -> None:
    """The stage as ``worker`` trains it: the whole stage for a single worker (``train/local.py``)."""
    loader = LoaderConfig(**resources.loader)
    parts = [(table, "train") for table in spec.train_tables] + [(spec.eval_table, "val"), (spec.eval_table, "test")]
    streamed, decoded_mb = stream_splits(loader, parts)
    stream_dir = _new_stream_dir(loader) if streamed else None
    try:
        _train(spec, resources, worker, loader, stream_dir, {"data/streamed": int(streamed), "data/decoded_mb": decoded_mb})
    finally:
        if stream_dir is not None:
            shutil.rmtree(stream_dir, ignore_errors=True)


def _new_stream_dir(loader: LoaderConfig) -> str:
    """This worker's folder for streamed copies (orphans of this host's dead workers removed first)."""
    root = loader.stream_dir or tempfile.gettempdir()
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"config: train.loader.stream_dir: cannot create {root}: {exc.strerror}") from None
    remove_orphaned_copies(root)
    return tempfile.mkdtemp(prefix=f"{STREAM_PREFIX}{socket.gethostname()}@{os.getpid()}-", dir=root)


def _train(spec: StageSpec, resources: Resources, worker: Worker, loader: LoaderConfig, stream_dir: str | None,
           data_metrics: dict) -> None:
    torch.manual_seed(spec.seed)  # the model's initial weights
    hparams = StageHparams(**spec.hparams)
    data = StageData.load(spec, loader, resources.cpus_per_worker, stream_dir, worker.device)
    model = _starting_model(spec, data.num_classes)
    method = get_method(spec.method)(spec.method_params, data.train_groups.numpy(), data.num_train_groups)
    trainer = Trainer(model, method, hparams, spec.seed, worker, resources.compile)
    model = trainer.model
    checkpoint = worker.session.checkpoint()
    start_epoch, selection = _restore(trainer, checkpoint)
    # For the Grafana board: the stage's run name (Ray Train's ray_train_run_name for several workers).
    images_per_second = TRAIN_IMAGES_PER_SECOND.create()
    throughput_tags = {"stage": worker.session.run_name, "rank": str(worker.rank)}
    if checkpoint is None:
        _report_start(spec, model, data, worker, selection)
    for epoch in range(start_epoch, trainer.total_epochs):
        if trainer.warmup and epoch == trainer.warmup:
            trainer.restart_after_warmup(data)
        result = trainer.run_epoch(epoch, data)
        if not math.isfinite(result.loss):  # checked per epoch, not per step: no device sync per step
            raise TrainingError(
                f"stage {spec.name}: the training loss is {result.loss} in epoch {epoch} (lr {hparams.lr}, {spec.method}); "
                "the stage stopped: lower its learning rate"
            )
        images_per_second.set(result.images_per_second, tags=throughput_tags)
        broadcast_model_state(model)  # each worker's batch-norm statistics saw its own batches
        metrics = data.evaluate(model, "val", worker)
        if epoch >= trainer.warmup:
            selection.consider(metrics, epoch, model)
        metrics.update(_epoch_metrics(epoch, trainer.warmup, result, worker, data_metrics))
        resume = {**trainer.resume_state(), "epoch": epoch + 1, "best": selection.best}
        worker.report(metrics, {RESUME_STATE: resume, BEST_MODEL: selection.state})
    _report_final(trainer, data, selection, start_epoch, data_metrics)


def _load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _starting_model(spec: StageSpec, num_classes: int) -> Classifier:
    """Random (seeded), ImageNet's backbone, or the previous stage's selected model."""
    model = build_model(spec.model, num_classes, spec.pretrained, spec.input_size)
    if spec.init_checkpoint:
        with ray.train.Checkpoint(spec.init_checkpoint).as_directory() as directory:
            model.load_state_dict(_load_state(Path(directory) / BEST_MODEL))
    return model


def _restore(trainer: Trainer, checkpoint: ray.train.Checkpoint | None) -> tuple[int, Selection]:
    """The epoch to start from and the selection so far: from the latest checkpoint of a restarted
    worker group, else epoch 0 and no candidate yet."""
    if not checkpoint:
        return 0, Selection.none_yet(trainer.model)
    with checkpoint.as_directory() as directory:
        state = _load_state(Path(directory) / RESUME_STATE)
        best_state = _load_state(Path(directory) / BEST_MODEL)
    if "model" in state:  # an epoch's checkpoint; the final one has nothing left to train
        trainer.load_resume_state(state)
    return state["epoch"], Selection(state["best"], best_state)


def _report_start(spec: StageSpec, model: Classifier, data: StageData, worker: Worker, selection: Selection) -> None:
    """The starting model, as epoch -1 (MLflow step 0): what the stage starts from, and with
    keep_start a candidate (stage 2 can then never end worse on validation than stage 1)."""
    broadcast_model_state(model)
    start = data.evaluate(model, "val", worker)
    if spec.keep_start:
        selection.consider(start, -1, model)
    worker.report({**start, "start": 1, "epoch": -1, SELECTION_STEP: 0})


def _epoch_metrics(epoch: int, warmup: int, result: EpochResult, worker: Worker, data_metrics: dict) -> dict:
    """What an epoch reports besides its validation metrics."""
    return {
        "epoch": epoch,
        SELECTION_STEP: max(0, epoch - warmup + 1),
        "train/loss": result.loss,
        "train/images_per_second_per_worker": result.images_per_second,
        # Share of the epoch the step spent waiting for its batch: ~0 when input keeps up.
        "train/input_wait_fraction": result.waiting_seconds / result.seconds,
        **peak_memory_mb(worker.device),
        **data_metrics,
    }


def _report_final(trainer: Trainer, data: StageData, selection: Selection, resumed_from_epoch: int, data_metrics: dict) -> None:
    """The selected model on validation and test, with the checkpoint the next stage starts from."""
    model, worker = trainer.model, trainer.worker
    model.load_state_dict(selection.state)
    broadcast_model_state(model)
    final = {
        "final": 1,
        "epoch": trainer.total_epochs,
        SELECTION_STEP: trainer.hparams.epochs + 1,
        "selected_epoch": selection.best["epoch"],
        "resumed_from_epoch": resumed_from_epoch,
    }
    final.update(data.evaluate(model, "val", worker))
    final.update(data.evaluate(model, "test", worker))
    final.update({**peak_memory_mb(worker.device), **data_metrics})
    # The final checkpoint's resume state is only "done": a run stopped right after this report
    # (e.g. by Tune, before the stage wrote its result file) resumes straight to this report.
    worker.report(final, {BEST_MODEL: selection.state, RESUME_STATE: {"epoch": trainer.total_epochs, "best": selection.best}})
