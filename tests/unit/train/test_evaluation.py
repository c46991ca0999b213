"""Sharded evaluation over gloo workers equals single-process evaluation exactly, on a fixed model:
every sample is counted once, including a group with a single image and splits that do not
divide evenly over the workers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist

from fake2real.train.batches import BatchLoader
from fake2real.train.evaluation import broadcast_model_state, evaluate, group_counts
from fake2real.train.metrics import evaluate_predictions
from fake2real.train.models import build_model
from fake2real.train.splits import MemoryImages, Split
from helpers import run_ranks

NAMES = ["y0_b0", "y0_b1", "y1_b0", "y1_b1"]


def _split(n: int = 37) -> Split:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=generator)
    biases = labels.clone()
    biases[5] = 1 - biases[5]  # one sample of its (y, b) group
    return Split(
        labels=labels,
        groups=labels * 2 + biases,
        sources=torch.zeros(n, dtype=torch.int64),
        rows=torch.randperm(n, generator=generator),
        store=MemoryImages(torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=generator)),
        image_shape=(3, 16, 16),
        streamed=False,
    )


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("small_cnn", 2).eval()


def _worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        loader = BatchLoader({"val": _split()}, torch.device("cpu"), workers=0, prefetch=1)
        cpu = torch.device("cpu")
        counts = group_counts(_model(), loader, "val", len(NAMES), cpu, rank, world, batch_size=4)
        results.put((rank, (counts, evaluate(_model(), loader, "val", NAMES, "val", cpu, rank, world, batch_size=4))))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_evaluation_equals_single_process(world):
    split = _split()
    single = evaluate(_model(), BatchLoader({"val": split}, torch.device("cpu"), 0, 0), "val", NAMES, "val", torch.device("cpu"), 0, 1)
    # The same numbers from the predictions directly: the reference does not share the code.
    with torch.no_grad():
        predictions = _model()(split.fetch(torch.arange(len(split)))).argmax(1)
    assert {k: v for k, v in single.items() if k != "val/loss"} == evaluate_predictions(
        predictions.numpy(), split.labels.numpy(), split.groups.numpy(), NAMES, "val"
    )
    assert "val/group/y1_b0/accuracy" in single or "val/group/y0_b1/accuracy" in single  # the lone sample's group

    sharded = run_ranks(_worker, world)
    sizes = np.bincount(split.groups.numpy(), minlength=len(NAMES))
    for rank in range(world):
        (correct, total, loss), metrics = sharded[rank]
        np.testing.assert_array_equal(total, sizes)  # each sample counted once, none dropped
        # Exactly: counts are summed, not averaged. The loss is a float sum in another order.
        assert metrics.pop("val/loss") == pytest.approx(single["val/loss"], rel=1e-12)
        assert metrics == {k: v for k, v in single.items() if k != "val/loss"}


def _rank_model(rank: int) -> torch.nn.Module:
    """The same weights on every rank, batch-norm statistics from the rank's own last batch (as
    DDP leaves them after a training step)."""
    model = _model().train()
    with torch.no_grad():
        model(torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(100 + rank)))
    return model.eval()


def _broadcast_worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model = _rank_model(rank)
        broadcast_model_state(model)
        loader = BatchLoader({"val": _split()}, torch.device("cpu"), workers=0, prefetch=1)
        metrics = evaluate(model, loader, "val", NAMES, "val", torch.device("cpu"), rank, world, batch_size=4)
        state = {k: v.numpy().copy() for k, v in model.state_dict().items()}  # tensors would need the sender alive
        results.put((rank, (metrics, state)))
    finally:
        dist.destroy_process_group()


def test_every_worker_evaluates_rank_zeros_batch_norm_statistics():
    """Logged metrics are the checkpoint's (rank 0's model), exactly, whatever the other ranks'
    batch-norm statistics were before evaluation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers compute: an NHWC batch norm's sums depend on the thread count
    try:
        rank0, rank1 = _rank_model(0), _rank_model(1)
        split = _split()
        saved = evaluate(rank0, BatchLoader({"val": split}, torch.device("cpu"), 0, 0), "val", NAMES, "val", torch.device("cpu"), 0, 1)
    finally:
        torch.set_num_threads(threads)
    assert not torch.equal(rank0.backbone[0][1].running_mean, rank1.backbone[0][1].running_mean)

    sharded = run_ranks(_broadcast_worker, 2)
    for rank in range(2):
        metrics, state = sharded[rank]
        for key, value in rank0.state_dict().items():
            np.testing.assert_array_equal(state[key], value.numpy(), err_msg=f"rank {rank}: {key}")
        assert metrics.pop("val/loss") == pytest.approx(saved["val/loss"], rel=1e-12)
        assert metrics == {k: v for k, v in saved.items() if k != "val/loss"}
