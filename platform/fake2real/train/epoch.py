"""A worker's training: the forward DDP wraps, one optimizer step, one epoch, the warm-up restart.

The method decides each epoch's sample order (``epoch_indices``, seeded by seed + epoch, then
sharded over workers the way ``DistributedSampler`` does) and the loss of each step from a
``methods.Batch``. The learning-rate schedule runs per step over each phase (a warm-up model's
epochs, then the stage's): the order and the rate are functions of (seed, epoch, step), so a
resumed epoch repeats them. NHWC (channels_last) models and batches; on GPUs: bf16 autocast, fused Adam, optionally
``torch.compile``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fake2real.train.evaluation import broadcast_model_state, correct_per_sample, to_device
from fake2real.train.methods import Batch, Method, Reducer
from fake2real.train.models import Classifier
from fake2real.train.spec import StageHparams
from fake2real.train.worker import StageData, Worker


class FeaturesAndLogits(torch.nn.Module):
    """The training forward: a classifier's penultimate features and its logits, in one call.

    This module, not the classifier, is what DDP wraps, so a method that needs features gets them
    from the forward DDP hooks into: calling ``.features`` on the unwrapped classifier would bypass
    DDP's gradient synchronisation. ``Classifier.forward`` is ``fc(features(x))``, so the logits
    are exactly ``classifier(x)``'s and a method that ignores the features pays nothing (they are
    computed, and kept for ``fc``'s backward, anyway).
    """

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.features(images)
        return features, self.classifier.fc(features)


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


def train_step(
    forward: torch.nn.Module, method: Method, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
    groups: torch.Tensor, reducer: Reducer,
) -> torch.Tensor:
    """One optimizer step on a batch (on the forward's device); returns the method's loss, detached."""
    # bf16 autocast on GPUs (no loss scaling needed, unlike fp16); full precision on CPUs.
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=images.is_cuda):
        features, logits = forward(images)
    logits = logits.float()
    per_sample_loss = F.cross_entropy(logits, labels, reduction="none")
    batch = Batch(per_sample_loss=per_sample_loss, logits=logits, labels=labels, groups=groups, features=features)
    loss = method.loss(batch, reducer)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass(frozen=True)
class EpochResult:
    loss: float  # the mean of the method's loss over this worker's samples
    samples: int  # this worker's
    seconds: float
    waiting_seconds: float  # for batches: ~0 when input keeps up with the step

    @property
    def images_per_second(self) -> float:
        return self.samples / self.seconds


class Trainer:
    """What a worker trains over a stage's epochs: the model, its forward, the method, the optimizer."""

    def __init__(self, model: Classifier, method: Method, hparams: StageHparams, seed: int, worker: Worker, compile: bool):
        # A method with a warm-up model (JTT) starts over from these weights; others need no copy.
        self.initial_state = {k: v.detach().clone() for k, v in model.state_dict().items()} if method.warmup_epochs else None
        method.freeze(model)
        # DDP-wrapped with several workers; ``model`` (unwrapped) is what checkpoints and evaluation see.
        self.forward = worker.session.prepare(FeaturesAndLogits(model))
        self.model = model.to(worker.device)
        self.step_forward = torch.compile(self.forward) if compile else self.forward
        self.method, self.hparams, self.seed, self.worker = method, hparams, seed, worker
        self.warmup = method.warmup_epochs
        self.total_epochs = self.warmup + hparams.epochs
        self.optimizer = self.new_optimizer()

    def new_optimizer(self) -> torch.optim.Optimizer:
        trained = [p for p in self.model.parameters() if p.requires_grad]
        if self.hparams.head_warmup_epochs:  # LP-FT: the head's group and the backbone's (its lr 0 while the head warms up)
            head = {id(p) for p in self.model.fc.parameters()}
            trained = [group for group in ({"params": [p for p in trained if id(p) in head], "name": "head"},
                                           {"params": [p for p in trained if id(p) not in head], "name": "backbone"}) if group["params"]]
        # Fused Adam: one kernel for all parameters on GPUs; the reference implementation on CPUs.
        return torch.optim.Adam(trained, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, fused=self.worker.on_gpu or None)

    def head_only(self, epoch: int) -> bool:
        """Whether ``epoch`` trains the classifier head alone (LP-FT's first phase)."""
        return 0 <= epoch - self.warmup < self.hparams.head_warmup_epochs

    def resume_state(self) -> dict:
        """What a restarted worker needs to continue: model, optimizer and method state."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "method": self.method.state_dict()}

    def load_resume_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])

    def restart_after_warmup(self, data: StageData) -> None:
        """The warm-up model has done its job (e.g. JTT's error set): the method sees which training
        samples it classifies correctly, then the model and optimizer start over."""
        broadcast_model_state(self.model)
        worker = self.worker
        self.method.after_warmup(correct_per_sample(self.model, data.loader, "train", worker.device, worker.rank, worker.world).numpy())
        self.model.load_state_dict(self.initial_state)
        self.optimizer = self.new_optimizer()

    def run_epoch(self, epoch: int, data: StageData) -> EpochResult:
        """Train on this worker's shard of the method's order for ``epoch``."""
        self.forward.train()
        head_only = self.head_only(epoch)
        if self.hparams.freeze_bn or head_only:  # linear probing: the starting model's features, statistics included
            freeze_batch_norm_statistics(self.model)
        if self.hparams.head_warmup_epochs and epoch - self.warmup == self.hparams.head_warmup_epochs:
            # Fine-tuning starts: the backbone's Adam moments start from zero, as if it joined now
            # (its gradients were computed, unused, while the head warmed up).
            for group in self.optimizer.param_groups:
                for parameter in group["params"] if group.get("name") == "backbone" else ():
                    self.optimizer.state.pop(parameter, None)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        local = shard(self.method.epoch_indices(epoch, generator), self.worker.rank, self.worker.world)
        batch_size = self.hparams.batch_size // self.worker.world  # the global batch, split evenly (config checks it divides)
        steps = math.ceil(len(local) / batch_size)
        device, reducer = self.worker.device, self.worker.reducer()
        started, waited, seen = time.perf_counter(), 0.0, 0
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        fetched = time.perf_counter()
        for step, (images, index) in enumerate(data.loader.batches("train", local, batch_size)):
            waited += time.perf_counter() - fetched
            self._set_lr(epoch, step / steps)
            images = to_device(images, device)
            labels, groups = data.train.labels[index].to(device, non_blocking=True), data.train_groups[index].to(device, non_blocking=True)
            loss_sum += train_step(self.step_forward, self.method, self.optimizer, images, labels, groups, reducer) * len(index)
            seen += len(index)
            fetched = time.perf_counter()
        mean_loss = loss_sum.item() / max(seen, 1)  # waits for the device: the epoch's work is done
        return EpochResult(mean_loss, seen, time.perf_counter() - started, waited)

    def _set_lr(self, epoch: int, progress_in_epoch: float) -> None:
        # The schedule runs over each phase: the warm-up model's epochs, then the stage's.
        phase_start, phase_epochs = (0, self.warmup) if epoch < self.warmup else (self.warmup, self.hparams.epochs)
        lr = self.hparams.lr * lr_factor(self.hparams.lr_schedule, (epoch - phase_start + progress_in_epoch) / phase_epochs)
        backbone_frozen = self.head_only(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = 0.0 if backbone_frozen and group.get("name") == "backbone" else lr
