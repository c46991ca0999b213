"""LP-FT (``head_warmup_epochs``): the first epochs train the classifier head alone on the starting
model's features — backbone weights and batch-norm statistics as they were —, then everything
trains, the backbone's optimizer state starting then. Without it, one optimizer group as before."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from fake2real.train.epoch import Trainer
from fake2real.train.methods import get_method
from fake2real.train.models import build_model
from fake2real.train.spec import StageHparams
from fake2real.train.worker import Worker


class _Loader:
    def __init__(self, images: torch.Tensor):
        self.images = images

    def batches(self, name, order, batch_size):
        for chunk in order.split(batch_size):
            yield self.images[chunk], chunk


class _Session:
    run_name = "test"

    def prepare(self, module):
        return module


def _trainer(head_warmup_epochs: int, method: str = "erm") -> tuple[Trainer, SimpleNamespace]:
    torch.manual_seed(0)
    n = 32
    images = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(n) % 2
    groups = labels * 2 + (torch.arange(n) // 2) % 2
    data = SimpleNamespace(loader=_Loader(images), train=SimpleNamespace(labels=labels), train_groups=groups)
    model = build_model("small_cnn", 2)
    hparams = StageHparams(epochs=3, lr=1e-2, batch_size=8, head_warmup_epochs=head_warmup_epochs)
    trained_method = get_method(method)({}, groups.numpy(), 4)
    worker = Worker(0, 1, torch.device("cpu"), _Session())
    return Trainer(model, trained_method, hparams, seed=0, worker=worker, compile=False), data


def _backbone(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.model.state_dict().items() if not k.startswith("fc.")}


def test_the_head_trains_alone_first_then_everything():
    trainer, data = _trainer(head_warmup_epochs=1)
    backbone, head = _backbone(trainer), trainer.model.fc.weight.clone()
    trainer.run_epoch(0, data)
    after_probe = _backbone(trainer)
    assert all(torch.equal(after_probe[k], backbone[k]) for k in backbone), "the backbone (or its statistics) moved while the head warmed up"
    assert not torch.equal(trainer.model.fc.weight, head)
    trainer.run_epoch(1, data)
    moved = [k for k in backbone if not torch.equal(_backbone(trainer)[k], after_probe[k])]
    assert any(k.endswith("weight") for k in moved) and any(k.endswith("running_mean") for k in moved)


def test_fine_tuning_starts_with_fresh_backbone_moments():
    trainer, data = _trainer(head_warmup_epochs=1)
    trainer.run_epoch(0, data)
    groups = {group["name"]: group for group in trainer.optimizer.param_groups}
    assert set(groups) == {"head", "backbone"} and groups["backbone"]["lr"] == 0.0
    trainer.run_epoch(1, data)
    # Adam's step count of a backbone weight: the fine-tuning epoch's steps only (4 batches).
    steps = trainer.optimizer.state[groups["backbone"]["params"][0]]["step"]
    assert int(steps) == 4 and int(trainer.optimizer.state[groups["head"]["params"][0]]["step"]) == 8
    assert groups["backbone"]["lr"] > 0


def test_without_head_warmup_one_group_trains_everything_from_the_first_epoch():
    trainer, data = _trainer(head_warmup_epochs=0)
    backbone = _backbone(trainer)
    trainer.run_epoch(0, data)
    assert len(trainer.optimizer.param_groups) == 1 and "name" not in trainer.optimizer.param_groups[0]
    assert any(not torch.equal(_backbone(trainer)[k], backbone[k]) for k in backbone)


def test_a_warm_up_model_trains_whole_before_the_head_warms_up():
    """JTT's warm-up model (its own first epochs) is not the stage's LP-FT phase."""
    trainer, data = _trainer(head_warmup_epochs=1, method="jtt")
    assert trainer.warmup >= 1 and not trainer.head_only(0) and trainer.head_only(trainer.warmup)
