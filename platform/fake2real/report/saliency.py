"""Grad-CAM saliency (Selvaraju et al. 2017) on selected models: where a classifier looks.

The paper's Figure 5 argument in pictures: a biased model's evidence sits on the bias (the
background), a debiased one's on the object. The layer is found, not named: the last module of
the backbone whose output is still a spatial map (ResNet's ``layer4``, the small CNN's last block).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fake2real.data.images import decode_rgb
from fake2real.data.table import group_name, read_info, read_table
from fake2real.report.cells import ratio_order
from fake2real.report.figures import pyplot, to_png
from fake2real.report.runs import RunRecord
from fake2real.train.methods import get_method
from fake2real.train.posthoc import load_selected_model


def target_layer(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """The last backbone module (in execution order) whose output is (N, C, H, W) with H·W > 1."""
    order: list[nn.Module] = []
    hooks = [
        module.register_forward_hook(
            lambda m, _i, out: order.append(m) if torch.is_tensor(out) and out.dim() == 4 and out.shape[2] * out.shape[3] > 1 else None)
        for module in model.backbone.modules()
        if module is not model.backbone
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    if not order:
        raise ValueError("the backbone has no spatial feature map for Grad-CAM")
    return order[-1]


def grad_cam(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, H, W) maps in [0, 1] for uint8 ``images`` (N, 3, H, W) and the class indices ``targets``."""
    layer = target_layer(model, images[:1])
    captured: dict[str, torch.Tensor] = {}
    hook = layer.register_forward_hook(lambda _m, _i, out: captured.__setitem__("maps", out))
    try:
        logits = model(images)
    finally:
        hook.remove()
    maps = captured["maps"]
    score = logits.gather(1, targets.view(-1, 1)).sum()
    gradients = torch.autograd.grad(score, maps)[0]
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # global-average-pooled gradients per channel
    cam = F.relu((weights * maps).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12).view(-1, 1, 1)
    return (cam / peak).detach()


def test_images(table: str, per_group: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The first ``per_group`` test images (by id) of every (Y, B) group: images, labels, group names."""
    rows = read_table(table, split="test", columns=["id", "image", "y", "b"]).sort_by("id")
    chosen: dict[str, list[int]] = {}
    for index, (y, b) in enumerate(zip(rows.column("y").to_pylist(), rows.column("b").to_pylist())):
        picked = chosen.setdefault(group_name(y, b), [])
        if len(picked) < per_group:
            picked.append(index)
    order = [i for group in sorted(chosen) for i in chosen[group]]
    images = torch.stack([decode_rgb(rows.column("image")[i].as_py()) for i in order])
    labels = torch.tensor([rows.column("y")[i].as_py() for i in order])
    names = [group for group in sorted(chosen) for _ in chosen[group]]
    return images, labels, names


def choose_runs(records: list[RunRecord], limit: int) -> list[RunRecord]:
    """One run per mixture/method at the highest bias ratio (lowest seed). Post-hoc methods are
    left out: their refit head is not a checkpoint, so Grad-CAM of it would show another model."""
    highest = max((r.bias_ratio for r in records), key=ratio_order)
    chosen: dict[tuple[str, str], RunRecord] = {}
    for record in sorted(records, key=lambda r: r.seed):
        if record.bias_ratio == highest and record.checkpoint_uri and get_method(record.method).base_method is None:
            chosen.setdefault((record.mixture, record.method), record)
    return list(chosen.values())[:limit]


def saliency_figure(records: list[RunRecord], per_group: int = 2, limit: int = 6) -> tuple[bytes, list[RunRecord]] | None:
    """A row per chosen run: each test image with its Grad-CAM map for the true class overlaid."""
    runs = choose_runs(records, limit)
    if not runs:
        return None
    plt = pyplot()
    images, labels, names = test_images(runs[0].real_table, per_group)
    num_classes = read_info(runs[0].real_table).num_classes
    fig, axes = plt.subplots(len(runs), len(names), figsize=(1.25 * len(names) + 1.6, 1.35 * len(runs) + 0.6), squeeze=False)
    for row, record in zip(axes, runs):
        model = load_selected_model(record.checkpoint_uri, record.model, num_classes, "report", record.input_size)
        maps = grad_cam(model, images, labels).numpy()
        with torch.no_grad():
            predicted = model(images).argmax(dim=1).tolist()
        for ax, image, cam, group, label, guess in zip(row, images, maps, names, labels.tolist(), predicted):
            ax.imshow(image.permute(1, 2, 0).numpy())
            ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title(f"{group} → {guess}", fontsize=6, color="black" if guess == label else "red")
            ax.axis("off")
        row[0].text(-0.08, 0.5, f"{record.mixture}\n{record.method}", transform=row[0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle(f"Grad-CAM for the true class at r = {runs[0].bias_ratio} (title: group → prediction; red = wrong)", fontsize=8)
    fig.tight_layout()
    return to_png(fig), runs

