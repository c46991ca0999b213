"""Stable Diffusion (any diffusers text-to-image pipeline) behind the generator interface.

Loaded once per actor from a local directory or a model id already in the user's Hugging Face
cache (``local_files_only``: nothing is downloaded at run time). What makes it fast on a GPU:
batched prompts, PyTorch SDPA attention (diffusers' default), channels_last UNet, optional
``torch.compile`` of the UNet, optional VAE slicing for memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fake2real.errors import ConfigError
from fake2real.generate.backends import GeneratorBackend

DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


class DiffusersBackend(GeneratorBackend):
    def __init__(
        self,
        model: str,
        revision: str | None = None,
        dtype: str = "float16",
        device: str = "auto",
        scheduler: str | None = None,
        steps: int = 25,
        guidance: float = 7.5,
        negative_prompt: str | None = None,
        resolution: int = 512,
        safety_checker: bool = False,
        compile: bool = False,
        channels_last: bool = True,
        vae_slicing: bool = False,
    ):
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype not in DTYPES:
            raise ConfigError(f"config: generation.dtype: unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
        torch_dtype = getattr(torch, dtype)
        options = {}
        if not safety_checker:
            options = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                model, revision=revision, dtype=torch_dtype, local_files_only=True, **options
            )
        except (OSError, ValueError, EnvironmentError) as exc:
            where = "directory" if Path(model).exists() or "/" not in model or model.startswith((".", "/")) else "model id"
            first = str(exc).strip().splitlines()[0][:200]
            raise ConfigError(f"config: generation.model: cannot load a diffusers pipeline from {where} '{model}': {first}") from None
        if scheduler:
            pipe.scheduler = _scheduler(pipe, scheduler)
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        if channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
        if vae_slicing:
            pipe.vae.enable_slicing()
        if compile:
            pipe.unet = torch.compile(pipe.unet, mode="max-autotune", fullgraph=True)
        self.pipe, self.device, self.torch = pipe, device, torch
        self.steps, self.guidance, self.resolution = steps, guidance, resolution
        self.negative_prompt = negative_prompt
        self.generator = f"{model}@{revision or 'main'} {type(pipe).__name__} {dtype} {type(pipe.scheduler).__name__}"

    def generate(self, y, b, prompts, seeds):
        torch = self.torch
        # One generator per row: each image depends on its own seed only, not on its batch.
        generators = [torch.Generator(self.device).manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            output = self.pipe(
                prompt=list(prompts),
                negative_prompt=[self.negative_prompt] * len(prompts) if self.negative_prompt else None,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                height=self.resolution,
                width=self.resolution,
                generator=generators,
                output_type="np",
            )
        return [(np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8) for image in output.images]


def _scheduler(pipe, name: str):
    import diffusers

    compatible = sorted({cls.__name__ for cls in pipe.scheduler.compatibles} | {type(pipe.scheduler).__name__})
    if name not in compatible:
        raise ConfigError(f"config: generation.scheduler: unknown scheduler '{name}' (known: {', '.join(compatible)})")
    return getattr(diffusers, name).from_config(pipe.scheduler.config)
