"""Classifiers built by name."""

from __future__ import annotations

import pytest
import torch

from fake2real.errors import ConfigError
from fake2real.train.models import MODELS, build_model


def _images(n: int, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_small_cnn_shapes():
    torch.manual_seed(0)
    model = build_model("small_cnn", 2)
    images = _images(4)
    logits = model(images)
    assert logits.shape == (4, 2)
    assert logits.dtype == torch.float32
    assert model.features(images).shape == (4, 128)
    assert model.fc.in_features == 128 and model.fc.out_features == 2


def test_small_cnn_other_sizes_and_classes():
    model = build_model("small_cnn", 5).eval()
    with torch.no_grad():
        assert model(_images(2, 16)).shape == (2, 5)
        assert model(_images(3, 64)).shape == (3, 5)


def test_small_cnn_gradients_flow():
    model = build_model("small_cnn", 2)
    loss = torch.nn.functional.cross_entropy(model(_images(4)), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    assert model.fc.weight.grad is not None
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_normalization_buffers_not_in_state_dict():
    state = build_model("small_cnn", 2).state_dict()
    assert "mean" not in state and "std" not in state


def test_resnet18_feature_dim():
    model = build_model("resnet18", 3).eval()
    with torch.no_grad():
        assert model.features(_images(1)).shape == (1, 512)
        assert model(_images(1)).shape == (1, 3)


def test_unknown_model():
    assert set(MODELS) == {"small_cnn", "resnet18", "resnet50"}
    with pytest.raises(ConfigError, match=r"train.model: unknown model 'vgg' \(known: resnet18, resnet50, small_cnn\)"):
        build_model("vgg", 2)


def test_pretrained_weights_from_a_local_file(tmp_path):
    import torchvision

    from fake2real.train.models import build_model

    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", 3, str(path))
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert model.fc.out_features == 3  # a new head


def test_pretrained_errors_name_the_problem(tmp_path):
    import torchvision

    from fake2real.errors import ConfigError
    from fake2real.train.models import build_model

    with pytest.raises(ConfigError, match="train.pretrained: no file at"):
        build_model("resnet18", 2, str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="junk.pth is not a torch state dict"):
        build_model("resnet18", 2, str(tmp_path / "junk.pth"))
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ConfigError, match="r18.pth does not fit this model"):
        build_model("resnet50", 2, str(tmp_path / "r18.pth"))
    with pytest.raises(ConfigError, match="small CNN has no pretrained weights"):
        build_model("small_cnn", 2, str(tmp_path / "r18.pth"))


def test_freeze_bn_keeps_running_statistics_while_training():
    from fake2real.train.epoch import freeze_batch_norm_statistics

    model = build_model("small_cnn", 2).train()
    batch_norm = model.backbone[0][1]
    before = batch_norm.running_mean.clone()
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    freeze_batch_norm_statistics(model)
    model(images).sum().backward()
    assert torch.equal(batch_norm.running_mean, before)
    assert batch_norm.weight.grad is not None  # its affine weights still train, as in the reference
    model.train()
    model(images)
    assert not torch.equal(batch_norm.running_mean, before)
