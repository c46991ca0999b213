"""Evaluation over a whole split by data-parallel workers.

Worker ``rank`` of ``world`` takes samples rank, rank + world, …; per-group correct and total
counts (integers, exact in float64) are summed over the workers, so every sample is counted once
whatever the number of workers: no group is dropped or double counted by sharding.

Every worker must evaluate the same model: DDP keeps parameters equal, but each worker's
batch-norm running statistics follow its own last batches, while the checkpoint holds rank 0's.
``broadcast_model_state`` gives every worker rank 0's weights and buffers first, so the logged
metrics are the saved model's, exactly.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from fake2real.train.batches import BatchLoader
from fake2real.train.metrics import summarize


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast_model_state(model: torch.nn.Module) -> None:
    """Rank 0's parameters and buffers (batch-norm statistics included) on every worker."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(tensor.data, src=0)


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    # NHWC, as the model computes (models.Classifier.features).
    return images.contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def group_counts(model: torch.nn.Module, loader: BatchLoader, split: str, num_groups: int, device, rank: int, world: int, batch_size: int = 512):
    """(correct, total, summed cross-entropy) per group over the whole split, summed over the
    workers (float64 arrays)."""
    data = loader.splits[split]
    model.eval()
    correct = torch.zeros(num_groups, dtype=torch.float64)
    total = torch.zeros(num_groups, dtype=torch.float64)
    loss = torch.zeros(num_groups, dtype=torch.float64)
    for images, index in loader.batches(split, torch.arange(rank, len(data), world), batch_size):
        logits = model(to_device(images, device)).float().cpu()
        labels, groups = data.labels[index], data.groups[index]
        hits = (logits.argmax(dim=1) == labels).double()
        correct.index_add_(0, groups, hits)
        total.index_add_(0, groups, torch.ones_like(hits))
        loss.index_add_(0, groups, torch.nn.functional.cross_entropy(logits, labels, reduction="none").double())
    counts = all_reduce_sum(torch.stack([correct, total, loss]).to(device)).cpu().numpy()
    return counts[0], counts[1], counts[2]


def evaluate(
    model: torch.nn.Module, loader: BatchLoader, split: str, names: list[str], prefix: str, device, rank: int, world: int, batch_size: int = 512
) -> dict:
    """Per-group metrics (``train/metrics.summarize``) of ``model`` over the whole split, and its
    mean cross-entropy ``{prefix}/loss`` (selection's last tie-break)."""
    correct, total, loss = group_counts(model, loader, split, len(names), device, rank, world, batch_size)
    return {**summarize(correct, total, names, prefix), f"{prefix}/loss": float(loss.sum() / total.sum())}


@torch.no_grad()
def correct_per_sample(model: torch.nn.Module, loader: BatchLoader, split: str, device, rank: int, world: int, batch_size: int = 512) -> torch.Tensor:
    """Whether the model classifies each sample of the split correctly (JTT's error set)."""
    data = loader.splits[split]
    model.eval()
    correct = torch.zeros(len(data), dtype=torch.float64)
    for images, index in loader.batches(split, torch.arange(rank, len(data), world), batch_size):
        correct[index] = (model(to_device(images, device)).argmax(dim=1).cpu() == data.labels[index]).double()
    return all_reduce_sum(correct.to(device)).cpu() > 0.5
