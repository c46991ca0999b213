"""Evaluation over a whole split by data-parallel workers.

Worker ``rank`` of ``world`` takes samples rank, rank + world, …; per-group correct and total
counts (integers, exact in float64) are summed over the workers, so every sample is counted once
whatever the number of workers: no group is dropped or double counted by sharding.
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


def to_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    images = images.to(device, non_blocking=True)
    # NHWC convolutions are the fast path of tensor cores.
    return images.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else images


@torch.no_grad()
def group_counts(model: torch.nn.Module, loader: BatchLoader, split: str, num_groups: int, device, rank: int, world: int, batch_size: int = 512):
    """(correct, total) per group over the whole split, summed over the workers (float64 arrays)."""
    data = loader.splits[split]
    model.eval()
    correct = torch.zeros(num_groups, dtype=torch.float64)
    total = torch.zeros(num_groups, dtype=torch.float64)
    for images, index in loader.batches(split, torch.arange(rank, len(data), world), batch_size):
        predictions = model(to_device(images, device)).argmax(dim=1).cpu()
        hits = (predictions == data.labels[index]).double()
        correct.index_add_(0, data.groups[index], hits)
        total.index_add_(0, data.groups[index], torch.ones_like(hits))
    counts = all_reduce_sum(torch.stack([correct, total]).to(device)).cpu().numpy()
    return counts[0], counts[1]


def evaluate(
    model: torch.nn.Module, loader: BatchLoader, split: str, names: list[str], prefix: str, device, rank: int, world: int, batch_size: int = 512
) -> dict:
    """Per-group metrics (``train/metrics.summarize``) of ``model`` over the whole split."""
    correct, total = group_counts(model, loader, split, len(names), device, rank, world, batch_size)
    return summarize(correct, total, names, prefix)


@torch.no_grad()
def correct_per_sample(model: torch.nn.Module, loader: BatchLoader, split: str, device, rank: int, world: int, batch_size: int = 512) -> torch.Tensor:
    """Whether the model classifies each sample of the split correctly (JTT's error set)."""
    data = loader.splits[split]
    model.eval()
    correct = torch.zeros(len(data), dtype=torch.float64)
    for images, index in loader.batches(split, torch.arange(rank, len(data), world), batch_size):
        correct[index] = (model(to_device(images, device)).argmax(dim=1).cpu() == data.labels[index]).double()
    return all_reduce_sum(correct.to(device)).cpu() > 0.5
