"""Grad-CAM: the layer it reads, and maps that land where the evidence is."""

from __future__ import annotations

import torch
from torch import nn

from fake2real.report.saliency import grad_cam, target_layer
from fake2real.train.models import Classifier, build_model


def bright_spot_model() -> Classifier:
    """Class 1's logit is the mean of a feature that fires only on bright pixels."""
    conv = nn.Conv2d(3, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(-2.0)  # normalized bright pixels sum to ~6.4, dark ones to ~-6
    relu = nn.ReLU()
    model = Classifier(nn.Sequential(conv, relu, nn.AdaptiveAvgPool2d(1), nn.Flatten()), 1, 2)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.fc.bias.zero_()
    return model.eval()


def test_target_layer_is_the_last_spatial_map():
    model = bright_spot_model()
    assert target_layer(model, torch.zeros(1, 3, 16, 16, dtype=torch.uint8)) is model.backbone[1]
    resnet = build_model("resnet18", 2).eval()
    assert target_layer(resnet, torch.zeros(1, 3, 64, 64, dtype=torch.uint8)) is resnet.backbone.layer4
    cnn = build_model("small_cnn", 2).eval()
    assert target_layer(cnn, torch.zeros(1, 3, 32, 32, dtype=torch.uint8)) is cnn.backbone[4]  # last conv block


def test_grad_cam_puts_the_mass_on_the_bright_square():
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    images[0, :, 4:12, 4:12] = 255
    images[1, :, 20:30, 14:24] = 255
    maps = grad_cam(bright_spot_model(), images, torch.tensor([1, 1]))
    assert maps.shape == (2, 32, 32) and float(maps.min()) >= 0 and float(maps.max()) == 1.0
    for cam, (rows, columns) in zip(maps, ((slice(4, 12), slice(4, 12)), (slice(20, 30), slice(14, 24)))):
        inside = cam[rows, columns].sum() / cam.sum()
        assert inside > 0.9, float(inside)
