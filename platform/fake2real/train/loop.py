"""One stage's training loop, run by every Ray Train worker.

Before the first epoch the model the stage starts from (random, ImageNet or the previous stage's)
is evaluated on validation and reported as the start (MLflow step 0). Each epoch: train, evaluate
per-group accuracy on the whole validation set (sharded over the workers, counts summed, so no
sample is dropped or counted twice), and report a checkpoint that holds both the resume state and
the best-so-far model. Selection (``train/metrics.selection_key``): best validation WGA, ties to
balanced accuracy, then loss; the starting model competes only with ``keep_start`` (the reference
selects among trained epochs only). At the end the selected model is evaluated on validation and
test and reported with a final checkpoint whose ``best_model.pt`` is what the next stage starts
from. Every worker evaluates rank 0's weights and batch-norm statistics, the checkpoint's.

``freeze_bn`` (a stage hyperparameter; the reference searches it for FFR's stage 2) keeps the
batch-norm layers in eval mode while training: their running statistics stay those of the model
the stage started from (their affine weights still train, as in the reference).

The method decides each epoch's sample order (``epoch_indices``, seeded by seed + epoch, then
sharded over workers the way ``DistributedSampler`` does) and may ask for a warm-up model first
(JTT): after ``warmup_epochs`` the model and optimizer start over and only later epochs compete
for selection. A stage trains on one table, or on several mixed (groups (y, b, g)).

Scale (train.loader, train.compile): splits are decoded into memory, or streamed from a local
memory-mapped copy when they would not fit (``train/splits.py``); batches are fetched ahead of
the step (``train/batches.py``). On GPUs: bf16 autocast, channels_last, fused Adam, optionally
``torch.compile``. A restarted worker group (Ray Train's FailureConfig) resumes from the latest
checkpoint: model, optimizer, method state (sampler weights, GroupDRO's q, JTT's error set) and
best model; the epoch order and the learning-rate schedule are functions of (seed, epoch, step),
so they resume with the epoch.
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
import time
from pathlib import Path

import ray.train
import ray.train.torch
import torch

from fake2real.sections import LoaderConfig
from fake2real.data.table import group_name, read_info
from fake2real.errors import ConfigError, TrainingError
from fake2real.track.ray_metrics import TRAIN_IMAGES_PER_SECOND
from fake2real.train.methods import Reducer, get_method
from fake2real.train.evaluation import all_reduce_sum, broadcast_model_state, correct_per_sample, evaluate, to_device
from fake2real.train.metrics import improves, selection_key
from fake2real.train.models import build_model
from fake2real.train.batches import BatchLoader
from fake2real.train.splits import concat, decoded_bytes, read_split

BEST_MODEL = "best_model.pt"
RESUME_STATE = "resume_state.pt"
SELECTION_METRIC = "val/worst_group_accuracy"
# Epochs that compete for selection so far (a warm-up model's count 0; the selected model's
# report is one more): the time axis of early stopping (search.py's ASHA).
SELECTION_STEP = "selection_step"
# Folders of streamed copies: <prefix><host>@<pid of the worker>-<random>.
STREAM_PREFIX = "fake2real-stream-"




def _load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This worker's share of an epoch, padded by wrapping so every worker takes as many steps.

    Worker r takes indices r, r + world, …: the union of the workers' k-th batches is the
    k-th global batch of a single worker's run with the same global batch size.
    """
    padding = (-len(indices)) % world
    if padding:
        indices = torch.cat([indices, indices[:padding]])
    return indices[rank::world]


def freeze_batch_norm_statistics(model: torch.nn.Module) -> None:
    """Batch-norm layers in eval mode: normalise with, and never update, their running statistics."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def lr_factor(schedule: str, progress: float) -> float:
    """The learning rate's multiplier at ``progress`` ∈ [0, 1) of a training phase."""
    return 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0


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
    # Ray Train's per-report INFO line comes from a logger named by a file path (so LoggingConfig
    # misses it) through this worker's root logger; the controller callback prints a line per epoch.
    logging.getLogger().setLevel(logging.WARNING)
    runtime = config.get("runtime", {})
    loader_config = LoaderConfig(**runtime.get("loader", {}))
    tables = config["train_tables"]
    parts = [(table, "train") for table in tables] + [(config["eval_table"], "val"), (config["eval_table"], "test")]
    streamed, decoded_mb = stream_splits(loader_config, parts)
    stream_dir = None
    if streamed:
        root = loader_config.stream_dir or tempfile.gettempdir()
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"config: train.loader.stream_dir: cannot create {root}: {exc.strerror}") from None
        remove_orphaned_copies(root)
        stream_dir = tempfile.mkdtemp(prefix=f"{STREAM_PREFIX}{socket.gethostname()}@{os.getpid()}-", dir=root)
    try:
        _train(config, runtime, loader_config, stream_dir, {"data/streamed": int(streamed), "data/decoded_mb": decoded_mb})
    finally:
        if stream_dir is not None:
            shutil.rmtree(stream_dir, ignore_errors=True)


def _train(config: dict, runtime: dict, loader_config: LoaderConfig, stream_dir: str | None, data_metrics: dict) -> None:
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    on_gpu = device.type == "cuda"
    torch.manual_seed(config["seed"])

    info = read_info(config["eval_table"])
    num_biases = info.num_biases
    names = [group_name(y, b) for y in range(info.num_classes) for b in range(num_biases)]
    tables = config["train_tables"]
    splits = {
        "train": concat([read_split(path, "train", num_biases, stream_dir) for path in tables]),
        "val": read_split(config["eval_table"], "val", num_biases, stream_dir),
        "test": read_split(config["eval_table"], "test", num_biases, stream_dir),
    }
    train = splits["train"]
    workers = loader_config.workers if loader_config.workers is not None else max(0, int(runtime.get("cpus_per_worker", 1)) - 1)
    loader = BatchLoader(splits, device, workers, loader_config.prefetch_batches)
    # Mixed real + synthetic data: group-aware methods see (y, b, g) groups.
    train_groups = train.source_groups(len(names)) if len(tables) > 1 else train.groups
    num_train_groups = len(names) * (2 if len(tables) > 1 else 1)

    model = build_model(config["model"], info.num_classes, config.get("pretrained"))
    if config.get("init_checkpoint"):
        with ray.train.Checkpoint(config["init_checkpoint"]).as_directory() as directory:
            model.load_state_dict(_load_state(Path(directory) / BEST_MODEL))
    method = get_method(config["method"])(config["method_params"], train_groups.numpy(), num_train_groups)
    # A method with a warm-up model (JTT) starts over from these weights; others need no copy.
    initial_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if method.warmup_epochs else None
    method.freeze(model)
    hp = config["hparams"]
    schedule = hp.get("lr_schedule", "constant")

    if on_gpu:  # NHWC convolutions are the fast path of tensor cores
        model = model.to(memory_format=torch.channels_last)
    ddp_model = ray.train.torch.prepare_model(model)
    model = model.to(device)
    step_model = torch.compile(ddp_model) if runtime.get("compile") else ddp_model

    def new_optimizer() -> torch.optim.Optimizer:
        trained = [p for p in model.parameters() if p.requires_grad]
        # Fused Adam: one kernel for all parameters on GPUs; the reference implementation on CPUs.
        return torch.optim.Adam(trained, lr=hp["lr"], weight_decay=hp["weight_decay"], fused=on_gpu or None)

    optimizer = new_optimizer()
    warmup = method.warmup_epochs
    total_epochs = warmup + hp["epochs"]

    # best["key"] is the selection key of the best candidate so far (None: none yet).
    start_epoch, best = 0, {"epoch": -1, SELECTION_METRIC: -1.0, "key": None}
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = _load_state(Path(directory) / RESUME_STATE)
            best_state = _load_state(Path(directory) / BEST_MODEL)
        if "model" in state:  # an epoch's checkpoint; the final one has nothing left to train
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            method.load_state_dict(state["method"])
        start_epoch, best = state["epoch"], state["best"]
    resumed_from_epoch = start_epoch

    # bf16 autocast on GPUs (no loss scaling needed, unlike fp16); full precision on CPUs.
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu)  # noqa: E731
    batch_size = hp["batch_size"] // world  # the global batch, split evenly (config checks it divides)
    reducer = Reducer(world_size=world, sum=all_reduce_sum)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")
    # For the Grafana board; the experiment name is the Train run's name (ray_train_run_name).
    images_per_second = TRAIN_IMAGES_PER_SECOND.create()
    throughput_tags = {"stage": context.get_experiment_name(), "rank": str(rank)}

    def report(metrics: dict, files: dict[str, dict]) -> None:
        # Every worker reports (it is a barrier); rank 0 alone writes the checkpoint files.
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                for name, payload in files.items():
                    torch.save(payload, Path(directory) / name)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint)

    def candidate(metrics: dict, epoch: int) -> None:
        """Keep the model if it beats the best so far (the first of equals wins)."""
        nonlocal best, best_state
        key = list(selection_key(metrics))
        if improves(key, best.get("key")):
            best = {"epoch": epoch, SELECTION_METRIC: metrics[SELECTION_METRIC], "key": key}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    if checkpoint is None:
        # The starting model, as epoch -1 (MLflow step 0): what the stage starts from, and with
        # keep_start a candidate (stage 2 can then never end worse on validation than stage 1).
        broadcast_model_state(model)
        start = evaluate(model, loader, "val", names, "val", device, rank, world)
        if config.get("keep_start"):
            candidate(start, -1)
        ray.train.report({**start, "start": 1, "epoch": -1, SELECTION_STEP: 0})

    for epoch in range(start_epoch, total_epochs):
        if warmup and epoch == warmup:
            # The warm-up model has done its job (e.g. JTT's error set): start the model over.
            broadcast_model_state(model)
            method.after_warmup(correct_per_sample(model, loader, "train", device, rank, world).numpy())
            model.load_state_dict(initial_state)
            optimizer = new_optimizer()
        ddp_model.train()
        if hp.get("freeze_bn"):
            freeze_batch_norm_statistics(model)
        generator = torch.Generator().manual_seed(config["seed"] + epoch)
        local = shard(method.epoch_indices(epoch, generator), rank, world)
        # The schedule runs over each phase: the warm-up model's epochs, then the stage's.
        phase_start, phase_epochs = (0, warmup) if epoch < warmup else (warmup, hp["epochs"])
        steps = math.ceil(len(local) / batch_size)
        started, waited, seen = time.perf_counter(), 0.0, 0
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        fetched = time.perf_counter()
        for step, (images, index) in enumerate(loader.batches("train", local, batch_size)):
            waited += time.perf_counter() - fetched
            for group in optimizer.param_groups:
                group["lr"] = hp["lr"] * lr_factor(schedule, (epoch - phase_start + step / steps) / phase_epochs)
            images = to_device(images, device)
            labels, groups = train.labels[index].to(device, non_blocking=True), train_groups[index].to(device, non_blocking=True)
            with autocast():
                logits = step_model(images)
            loss = method.loss(loss_fn(logits.float(), labels), groups, reducer)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)
            seen += len(index)
            fetched = time.perf_counter()
        train_loss = loss_sum.item() / max(seen, 1)  # waits for the device: the epoch's work is done
        if not math.isfinite(train_loss):  # checked per epoch, not per step: no device sync per step
            raise TrainingError(
                f"stage {config['name']}: the training loss is {train_loss} in epoch {epoch} (lr {hp['lr']}, {config['method']}); "
                "the stage stopped: lower its learning rate"
            )
        elapsed = time.perf_counter() - started
        throughput = seen / elapsed
        images_per_second.set(throughput, tags=throughput_tags)
        broadcast_model_state(model)  # each worker's batch-norm statistics saw its own batches
        metrics = evaluate(model, loader, "val", names, "val", device, rank, world)
        if epoch >= warmup:
            candidate(metrics, epoch)
        metrics.update(
            {
                "epoch": epoch,
                SELECTION_STEP: max(0, epoch - warmup + 1),
                "train/loss": train_loss,
                "train/images_per_second_per_worker": throughput,
                # Share of the epoch the step spent waiting for its batch: ~0 when input keeps up.
                "train/input_wait_fraction": waited / elapsed,
                **peak_memory_mb(device),
                **data_metrics,
            }
        )
        resume = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "method": method.state_dict(),
            "epoch": epoch + 1,
            "best": best,
        }
        report(metrics, {RESUME_STATE: resume, BEST_MODEL: best_state})

    model.load_state_dict(best_state)
    broadcast_model_state(model)
    final = {"final": 1, "epoch": total_epochs, SELECTION_STEP: hp["epochs"] + 1, "selected_epoch": best["epoch"], "resumed_from_epoch": resumed_from_epoch}
    final.update(evaluate(model, loader, "val", names, "val", device, rank, world))
    final.update(evaluate(model, loader, "test", names, "test", device, rank, world))
    final.update({**peak_memory_mb(device), **data_metrics})
    # The final checkpoint's resume state is only "done": a run stopped right after this report
    # (e.g. by Tune, before the stage wrote its result file) resumes straight to this report.
    report(final, {BEST_MODEL: best_state, RESUME_STATE: {"epoch": total_epochs, "best": best}})
