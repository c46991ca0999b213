"""Classifiers: a backbone producing penultimate features, and a linear head ``fc``."""

from __future__ import annotations

import torch
from torch import nn

from fake2real.errors import ConfigError

# ImageNet statistics: the ResNets expect them, and they are harmless for the small CNN.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Classifier(nn.Module):
    """Takes uint8 images (N, 3, H, W); ``features`` gives the penultimate representation."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.backbone = backbone
        self.fc = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() / 255.0 - self.mean) / self.std
        return self.backbone(x)

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


MODELS = {"small_cnn": _small_cnn, "resnet18": lambda: _resnet("resnet18"), "resnet50": lambda: _resnet("resnet50")}


def load_pretrained(backbone: nn.Module, path: str) -> None:
    """Torchvision weights from a local file into a backbone whose ``fc`` is gone."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"config: train.pretrained: no file at {path}") from None
    except Exception as exc:  # pickle/zip errors of a file that is not a state dict
        raise ConfigError(f"config: train.pretrained: {path} is not a torch state dict ({str(exc).splitlines()[0][:120]})") from None
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
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


def build_model(name: str, num_classes: int, pretrained: str | None = None) -> Classifier:
    if name not in MODELS:
        raise ConfigError(f"config: train.model: unknown model '{name}' (known: {', '.join(sorted(MODELS))})")
    backbone, dim = MODELS[name]()
    if pretrained:
        if name == "small_cnn":
            raise ConfigError("config: train.pretrained: the small CNN has no pretrained weights (use resnet18 or resnet50)")
        load_pretrained(backbone, pretrained)
    return Classifier(backbone, dim, num_classes)
