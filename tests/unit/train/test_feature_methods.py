"""A method whose loss needs features is one class: the training step hands every method a
``Batch`` from one forward (through DDP), and ERM's numbers are those of the plain forward.

``FeatureAlignment`` exists only here: a CORAL-style penalty (Sun & Saenko, 2016) on the distance
between the groups' feature means and covariances, registered by a fixture for one test.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist

from fake2real.train.epoch import FeaturesAndLogits, train_step
from fake2real.train.methods import METHODS, Hyperparameter, Method, Reducer, get_method, register
from fake2real.train.methods.erm import ERM
from fake2real.train.models import MODELS, build_model
from helpers import run_ranks

LABELS = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
GROUPS = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])  # (y, b): 3 samples each


def alignment_penalty(features: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean over pairs of groups (of 2+ samples) of ‖μ_a − μ_b‖² + ‖Σ_a − Σ_b‖²_F."""
    members = [features[groups == g] for g in groups.unique()]
    stats = [(f.mean(0), torch.cov(f.T)) for f in members if len(f) > 1]
    pairs = [(a, b) for i, a in enumerate(stats) for b in stats[i + 1 :]]
    return sum(((ma - mb) ** 2).sum() + ((ca - cb) ** 2).sum() for (ma, ca), (mb, cb) in pairs) / len(pairs)


class FeatureAlignment(Method):
    name = "feature_alignment_test"
    uses_groups = True
    hyperparameters = (Hyperparameter("penalty", 0.5, ("loguniform", 1e-3, 10.0)),)

    def loss(self, batch, reducer):
        return batch.per_sample_loss.mean() + self.params["penalty"] * alignment_penalty(batch.features.float(), batch.groups)


@pytest.fixture
def feature_alignment():
    register(FeatureAlignment)
    try:
        yield get_method(FeatureAlignment.name)
    finally:  # other tests see the registry as the package left it
        METHODS.pop(FeatureAlignment.name)


def _images(n: int = len(LABELS), size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("small_cnn", 2)


def _step(model: torch.nn.Module, method: Method, images=None, labels=LABELS, groups=GROUPS, forward=None):
    """The loop's step with a learning rate of 0: the weights stay, the gradients are left to read."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_step(forward or FeaturesAndLogits(model), method, optimizer, _images() if images is None else images, labels, groups, Reducer())
    return loss, {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_forward_is_the_models_forward_exactly(name):
    torch.manual_seed(0)
    model = build_model(name, 3).eval()
    images = _images(2, 32)
    with torch.no_grad():
        features, logits = FeaturesAndLogits(model)(images)
        assert torch.equal(logits, model(images))
        assert torch.equal(features, model.features(images))


def test_erm_step_equals_the_plain_forward_step():
    """ERM through the Batch interface: the loss and gradients of model(x) → mean cross-entropy."""
    model = _model()
    reference = copy.deepcopy(model)
    loss, grads = _step(model, ERM({}, GROUPS.numpy(), 4))
    expected = torch.nn.CrossEntropyLoss(reduction="none")(reference(_images()).float(), LABELS).mean()
    expected.backward()
    assert torch.equal(loss, expected.detach())
    assert all(torch.equal(grads[name], p.grad) for name, p in reference.named_parameters())


def test_a_feature_method_registered_in_one_place_trains_through_the_step(feature_alignment):
    method = feature_alignment({"penalty": 0.5}, GROUPS.numpy(), 4)
    erm_model = _model()
    aligned_model, probe = copy.deepcopy(erm_model), copy.deepcopy(erm_model)
    erm_loss, erm_grads = _step(erm_model, ERM({}, GROUPS.numpy(), 4))
    loss, grads = _step(aligned_model, method)

    # The same batch's features, as the step saw them (training mode: batch statistics).
    penalty = alignment_penalty(probe.features(_images()), GROUPS)
    assert penalty.item() > 0
    assert loss.item() == pytest.approx(erm_loss.item() + 0.5 * penalty.item(), rel=1e-6)
    # The penalty reaches the backbone through the features, and never the head.
    penalty_grads = torch.autograd.grad(0.5 * penalty, list(probe.backbone.parameters()))
    for (name, _), penalty_grad in zip(probe.backbone.named_parameters(), penalty_grads):
        assert torch.allclose(grads[f"backbone.{name}"] - erm_grads[f"backbone.{name}"], penalty_grad, atol=1e-6)
    assert any(g.abs().max() > 0 for g in penalty_grads)
    assert torch.equal(grads["fc.weight"], erm_grads["fc.weight"]) and torch.equal(grads["fc.bias"], erm_grads["fc.bias"])


def _ddp_worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model = _model()
        half = slice(6 * rank, 6 * rank + 6)  # rank 0: groups 0 and 1; rank 1: groups 2 and 3
        method = FeatureAlignment({}, GROUPS.numpy(), 4)
        forward = torch.nn.parallel.DistributedDataParallel(FeaturesAndLogits(model))
        _, grads = _step(model, method, _images()[half], LABELS[half], GROUPS[half], forward=forward)
        results.put((rank, {name: g.numpy().copy() for name, g in grads.items()}))  # tensors would need the sender alive
    finally:
        dist.destroy_process_group()


def test_feature_gradients_are_averaged_by_ddp():
    """Each of 2 gloo workers steps on its half of the batch: every worker ends with the mean of
    the halves' gradients, the feature penalty's included (the forward went through DDP)."""
    method = FeatureAlignment({}, GROUPS.numpy(), 4)
    halves = [_step(_model(), method, _images()[h], LABELS[h], GROUPS[h])[1] for h in (slice(0, 6), slice(6, 12))]
    synced = run_ranks(_ddp_worker, 2)
    for name, first in halves[0].items():
        mean = ((first + halves[1][name]) / 2).numpy()
        for rank in range(2):
            np.testing.assert_allclose(synced[rank][name], mean, rtol=1e-4, atol=1e-6, err_msg=name)  # summation order differs
