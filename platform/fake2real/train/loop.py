"""One stage's training loop, run by every Ray Train worker.

Each epoch: train, evaluate per-group accuracy on the whole validation set (sharded over the
workers, counts summed, so no sample is dropped or counted twice), and report a checkpoint that
holds both the resume state and the best-so-far model by validation worst-group accuracy. At the
end the selected model is evaluated on validation and test and reported with a final checkpoint
whose ``best_model.pt`` is what the next stage starts from.
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
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from fake2real.data.table import group_name, read_info
from fake2real.train.methods import Reducer, get_method
from fake2real.train.metrics import summarize
from fake2real.train.models import build_model
from fake2real.train.tensors import ImageTensors, group_counts, load_split

BEST_MODEL = "best_model.pt"
RESUME_STATE = "resume_state.pt"
SELECTION_METRIC = "val/worst_group_accuracy"


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
    train = load_split(config["train_table"], "train", num_biases)
    val = load_split(config["eval_table"], "val", num_biases)
    test = load_split(config["eval_table"], "test", num_biases)

    model = build_model(config["model"], info.num_classes)
    if config.get("init_checkpoint"):
        with ray.train.Checkpoint(config["init_checkpoint"]).as_directory() as directory:
            model.load_state_dict(_load_state(Path(directory) / BEST_MODEL))
    method = get_method(config["method"])(config["method_params"], group_counts(train, len(names)))
    method.freeze(model)
    hp = config["hparams"]
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=hp["lr"], weight_decay=hp["weight_decay"]
    )

    start_epoch, best = 0, {"epoch": -1, SELECTION_METRIC: -1.0}
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = _load_state(Path(directory) / RESUME_STATE)
            best_state = _load_state(Path(directory) / BEST_MODEL)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        method.load_state_dict(state["method"])
        start_epoch, best = state["epoch"], state["best"]
    resumed_from_epoch = start_epoch

    ddp_model = ray.train.torch.prepare_model(model)
    model = model.to(device)
    sampler = DistributedSampler(range(len(train)), num_replicas=world, rank=rank, shuffle=True, seed=config["seed"])
    loader = DataLoader(
        TensorDataset(train.images, train.labels, train.groups),
        batch_size=max(1, hp["batch_size"] // world),
        sampler=sampler,
    )
    reducer = Reducer(world_size=world, sum=_all_reduce_sum)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="none")

    def report(metrics: dict, files: dict[str, dict]) -> None:
        # Every worker reports (it is a barrier); rank 0 alone writes the checkpoint files.
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                for name, payload in files.items():
                    torch.save(payload, Path(directory) / name)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint)

    for epoch in range(start_epoch, hp["epochs"]):
        ddp_model.train()
        sampler.set_epoch(epoch)
        started, loss_sum, seen = time.perf_counter(), 0.0, 0
        for images, labels, groups in loader:
            images, labels, groups = images.to(device), labels.to(device), groups.to(device)
            loss = method.loss(loss_fn(ddp_model(images), labels), groups, reducer)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        elapsed = time.perf_counter() - started
        metrics = evaluate(model, val, names, "val", device)
        if metrics[SELECTION_METRIC] > best[SELECTION_METRIC]:
            best = {"epoch": epoch, SELECTION_METRIC: metrics[SELECTION_METRIC]}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        metrics.update(
            {"epoch": epoch, "train/loss": loss_sum / max(seen, 1), "train/images_per_second_per_worker": seen / elapsed}
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
    final = {"final": 1, "epoch": hp["epochs"], "selected_epoch": best["epoch"], "resumed_from_epoch": resumed_from_epoch}
    final.update(evaluate(model, val, names, "val", device))
    final.update(evaluate(model, test, names, "test", device))
    report(final, {BEST_MODEL: best_state})
