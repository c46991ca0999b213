"""A (class, bias)-conditional diffusion model as a diffusers pipeline: the group is its
condition, as a class label (``UNet2DModel(num_class_embeds=…)``), where Stable Diffusion takes a
prompt. Saved and loaded as a diffusers folder (``save_pretrained``: ``model_index.json``,
``unet/``, ``scheduler/``) plus ``groups.json``, the class and bias names it was trained on, so
a folder trained for other groups is refused by name.

Imported lazily (diffusers costs seconds): by a generation actor and by the generator's training
loop, never while a config is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline, UNet2DModel

from fake2real.errors import ConfigError

GROUPS_FILE = "groups.json"


class GroupDiffusionPipeline(DiffusionPipeline):
    """``unet`` predicts the noise of an image of group ``y * num_biases + b``; ``scheduler`` (DDIM)
    turns it into images."""

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: DDIMScheduler):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)

    @torch.inference_mode()
    def __call__(self, group_labels: list[int], generators: list[torch.Generator], num_inference_steps: int = 25,
                 eta: float = 0.0) -> np.ndarray:
        """uint8 (N, H, W, 3) images; image i is a function of ``group_labels[i]`` and ``generators[i]`` only."""
        unet, device = self.unet, self.unet.device
        size, channels = unet.config.sample_size, unet.config.in_channels
        # One generator per row: an image does not depend on the batch it was made in.
        x = torch.stack([torch.randn(channels, size, size, generator=g) for g in generators]).to(device)
        labels = torch.as_tensor(group_labels, device=device)
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        for t in self.scheduler.timesteps:
            noise = unet(x, t, class_labels=labels).sample
            if eta > 0:  # DDIM's fresh noise, per row again
                variance = torch.stack([torch.randn(channels, size, size, generator=g) for g in generators]).to(device)
                x = self.scheduler.step(noise, t, x, eta=eta, variance_noise=variance).prev_sample
            else:
                x = self.scheduler.step(noise, t, x).prev_sample
        images = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return images.permute(0, 2, 3, 1).cpu().numpy()


def build_unet(image_size: int, num_groups: int, channels: list[int], layers_per_block: int, attention: bool) -> UNet2DModel:
    """A small UNet: one resolution level per entry of ``channels``; ``attention`` adds self-attention at the lowest."""
    down, up = ["DownBlock2D"] * len(channels), ["UpBlock2D"] * len(channels)
    if attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=image_size, in_channels=3, out_channels=3, block_out_channels=tuple(channels), layers_per_block=layers_per_block,
        down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=min(8, channels[0]), num_class_embeds=num_groups,
    )


def noise_schedule() -> DDPMScheduler:
    """What the model is trained with (1000 steps, cosine betas); DDIM samples from the same schedule.

    The model predicts v (Salimans & Ho 2022), not the noise: at the first of 25 DDIM steps an
    ε-model's error is amplified ~20× in its estimate of the image, and the background tint — the
    bias itself — came out random (measured: benchmarks/RESULTS.md, "Fashion-MNIST generator")."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


def save_pipeline(unet: UNet2DModel, folder: str | Path, class_names: list[str], bias_names: list[str]) -> None:
    pipe = GroupDiffusionPipeline(unet, DDIMScheduler.from_config(noise_schedule().config))
    pipe.save_pretrained(folder)
    (Path(folder) / GROUPS_FILE).write_text(json.dumps({"class_names": class_names, "bias_names": bias_names}))


def read_groups(folder: str | Path, field: str) -> tuple[list[str], list[str]]:
    """The class and bias names a generator folder was trained on (``field`` names it in errors)."""
    path = Path(folder) / GROUPS_FILE
    try:
        groups = json.loads(path.read_text())
        return list(groups["class_names"]), list(groups["bias_names"])
    except FileNotFoundError:
        raise ConfigError(f"config: {field}: {folder} is not a generator the platform trained (no {GROUPS_FILE})") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"config: {field}: {path} is not a groups file (class_names, bias_names)") from None


def load_pipeline(folder: str | Path, device: str, field: str) -> GroupDiffusionPipeline:
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        pipe = GroupDiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, EnvironmentError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"config: {field}: cannot load a generator from {folder}: {first}") from None
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.to(memory_format=torch.channels_last)  # NHWC: oneDNN's convolutions skip a reorder (rates: benchmarks/RESULTS.md)
    return pipe.to(device)
