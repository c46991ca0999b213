"""One stage's training loop, run by every Ray Train worker.

Each epoch: train, evaluate per-group accuracy on the whole validation set (sharded over the
workers, counts summed, so no sample is dropped or counted twice), and report a checkpoint that
holds both the resume state and the best-so-far model by validation worst-group accuracy. At the
end the selected model is evaluated on validation and test and reported with a final checkpoint
whose ``best_model.pt`` is what the next stage starts from.

The method decides each epoch's sample order (``epoch_indices``, seeded by seed + epoch, then
sharded over workers the way ``DistributedSampler`` does) and may ask for a warm-up model first
(JTT): after ``warmup_epochs`` the model and optimizer start over and only later epochs compete
for selection. A stage trains on one table, or on several mixed (groups (y, b, g)).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from fake2real.data.table import group_name, read_info
from fake2real.track.ray_metrics import TRAIN_IMAGES_PER_SECOND
from fake2real.train.methods import Reducer, get_method
from fake2real.train.metrics import summarize
from fake2real.train.models import build_model
from fake2real.train.tensors import ImageTensors, concat, load_split

BEST_MODEL = "best_model.pt"
RESUME_STATE = "resume_state.pt"
SELECTION_METRIC = "val/worst_group_accuracy"
# Epochs that compete for selection so far (a warm-up model's count 0; the selected model's
# report is one more): the time axis of early stopping (search.py's ASHA).
SELECTION_STEP = "selection_step"


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: ImageTensors, names: list[str], prefix: str, device, batch_size: int = 512) -> dict:
    """Per-group metrics over the whole split; each worker takes every world_size-th sample."""
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    model.eval()
    correct = torch.zeros(len(names), dtype=torch.float64)
    total = torch.zeros(len(names), dtype=torch.float64)
    shard = torch.arange(rank, len(data), world)
    for start in range(0, len(shard), batch_size):
        index = shard[start : start + batch_size]
        predictions = model(data.images[index].to(device)).argmax(dim=1).cpu()
        hits = (predictions == data.labels[index]).double()
        correct.index_add_(0, data.groups[index], hits)
        total.index_add_(0, data.groups[index], torch.ones_like(hits))
    counts = _all_reduce_sum(torch.stack([correct, total]).to(device)).cpu()
    return summarize(counts[0].numpy(), counts[1].numpy(), names, prefix)


def _load_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This worker's share of an epoch, padded by wrapping so every worker takes as many steps."""
    padding = (-len(indices)) % world
    if padding:
        indices = torch.cat([indices, indices[:padding]])
    return indices[rank::world]


@torch.no_grad()
def correct_per_sample(model: torch.nn.Module, data: ImageTensors, device, batch_size: int = 512) -> torch.Tensor:
    """Whether the model classifies each sample correctly, over the whole set (sharded)."""
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    model.eval()
    correct = torch.zeros(len(data), dtype=torch.float64)
    index = torch.arange(rank, len(data), world)
    for start in range(0, len(index), batch_size):
        chunk = index[start : start + batch_size]
        correct[chunk] = (model(data.images[chunk].to(device)).argmax(dim=1).cpu() == data.labels[chunk]).double()
    return _all_reduce_sum(correct.to(device)).cpu() > 0.5


def train_loop_per_worker(config: dict) -> None:
    # Ray Train's per-report INFO line comes from a logger named by a file path (so LoggingConfig
    # misses it) through this worker's root logger; the controller callback prints a line per epoch.
    logging.getLogger().setLevel(logging.WARNING)
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    torch.manual_seed(config["seed"])

    info = read_info(config["eval_table"])
    num_biases = info.num_biases
    names = [group_name(y, b) for y in range(info.num_classes) for b in range(num_biases)]
    tables = config["train_tables"]
    train = concat([load_split(path, "train", num_biases) for path in tables])
    val = load_split(config["eval_table"], "val", num_biases)
    test = load_split(config["eval_table"], "test", num_biases)
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

    def new_optimizer() -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=hp["lr"], weight_decay=hp["weight_decay"])

    optimizer = new_optimizer()
    warmup = method.warmup_epochs
    total_epochs = warmup + hp["epochs"]

    start_epoch, best = 0, {"epoch": -1, SELECTION_METRIC: -1.0}
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

    on_gpu = device.type == "cuda"
    if on_gpu:  # NHWC convolutions are the fast path of tensor cores
        model = model.to(memory_format=torch.channels_last)
    ddp_model = ray.train.torch.prepare_model(model)
    model = model.to(device)
    # bf16 autocast on GPUs (no loss scaling needed, unlike fp16); full precision on CPUs.
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_gpu)  # noqa: E731
    batch_size = max(1, hp["batch_size"] // world)
    reducer = Reducer(world_size=world, sum=_all_reduce_sum)
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

    for epoch in range(start_epoch, total_epochs):
        if warmup and epoch == warmup:
            # The warm-up model has done its job (e.g. JTT's error set): start the model over.
            method.after_warmup(correct_per_sample(model, train, device).numpy())
            model.load_state_dict(initial_state)
            optimizer = new_optimizer()
        ddp_model.train()
        generator = torch.Generator().manual_seed(config["seed"] + epoch)
        local = shard(method.epoch_indices(epoch, generator), rank, world)
        started, loss_sum, seen = time.perf_counter(), 0.0, 0
        for start in range(0, len(local), batch_size):
            index = local[start : start + batch_size]
            images, labels, groups = train.images[index].to(device), train.labels[index].to(device), train_groups[index].to(device)
            if on_gpu:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits = ddp_model(images)
            loss = method.loss(loss_fn(logits.float(), labels), groups, reducer)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        throughput = seen / (time.perf_counter() - started)
        images_per_second.set(throughput, tags=throughput_tags)
        metrics = evaluate(model, val, names, "val", device)
        if epoch >= warmup and metrics[SELECTION_METRIC] > best[SELECTION_METRIC]:
            best = {"epoch": epoch, SELECTION_METRIC: metrics[SELECTION_METRIC]}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        metrics.update(
            {"epoch": epoch, SELECTION_STEP: max(0, epoch - warmup + 1), "train/loss": loss_sum / max(seen, 1), "train/images_per_second_per_worker": throughput}
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
    final = {"final": 1, "epoch": total_epochs, SELECTION_STEP: hp["epochs"] + 1, "selected_epoch": best["epoch"], "resumed_from_epoch": resumed_from_epoch}
    final.update(evaluate(model, val, names, "val", device))
    final.update(evaluate(model, test, names, "test", device))
    # The final checkpoint's resume state is only "done": a run stopped right after this report
    # (e.g. by Tune, before the stage wrote its result file) resumes straight to this report.
    report(final, {BEST_MODEL: best_state, RESUME_STATE: {"epoch": total_epochs, "best": best}})
