"""``generation.backend: diffusers``: Stable Diffusion (any diffusers text-to-image pipeline).

Loaded once per actor from a local directory or a model id already in the user's Hugging Face
cache (``local_files_only``: nothing is downloaded at run time). What makes it fast on a GPU:
batched prompts, PyTorch SDPA attention (diffusers' default), channels_last UNet, optional
``torch.compile`` of the UNet, optional VAE slicing for memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, Optional

import numpy as np
from pydantic import Field

from fake2real.errors import ConfigError
from fake2real.generate.base import GeneratorBackend
from fake2real.section_base import _Section


class DiffusersSettings(_Section):
    """``generation.diffusers``: the pipeline and how it is run."""

    # A local pipeline directory or a model id in the local HF cache.
    model: Optional[str] = None
    revision: Optional[str] = None
    dtype: Literal["float16", "bfloat16", "float32"] = "float16"
    device: Literal["auto", "cuda", "cpu"] = "auto"
    scheduler: Optional[str] = None  # a diffusers scheduler class, e.g. DPMSolverMultistepScheduler
    steps: int = Field(25, ge=1)
    guidance: float = Field(7.5, ge=0)
    negative_prompt: Optional[str] = None
    resolution: int = Field(512, ge=8)
    safety_checker: bool = False
    compile: bool = False
    channels_last: bool = True
    vae_slicing: bool = False


FIRST_SETTINGS = ("model", "revision", "dtype", "device", "scheduler", "steps", "guidance", "negative_prompt", "resolution",
                  "safety_checker", "compile", "channels_last", "vae_slicing")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")


class DiffusersBackend(GeneratorBackend):
    name = "diffusers"
    Settings = DiffusersSettings
    uses_gpu = True

    @classmethod
    def check_settings(cls, settings: DiffusersSettings) -> None:
        if not settings.model:
            raise ValueError("generation.diffusers.model is required for the diffusers backend")

    @classmethod
    def check(cls, settings, dataset) -> None:
        import diffusers
        from diffusers import DiffusionPipeline

        try:
            DiffusionPipeline.load_config(settings.model, revision=settings.revision, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"config: generation.diffusers.model: no diffusers pipeline at '{settings.model}' (a local directory with "
                f"model_index.json, or a model id already in the local Hugging Face cache): {str(exc).splitlines()[0][:150]}"
            ) from None
        if Path(settings.model).is_dir():
            _check_components(Path(settings.model), skipped=() if settings.safety_checker else ("safety_checker", "feature_extractor"))
        scheduler = getattr(diffusers, settings.scheduler, None) if settings.scheduler else None
        if settings.scheduler and not (isinstance(scheduler, type) and issubclass(scheduler, diffusers.SchedulerMixin)):
            raise ConfigError(f"config: generation.diffusers.scheduler: unknown scheduler '{settings.scheduler}' "
                              "(a diffusers scheduler class, e.g. DDIMScheduler)")

    @classmethod
    def identity(cls, settings, dataset) -> dict:
        # Stored pools were named with these 13 settings; a setting added later joins a pool's
        # identity only when set, so the stored pools keep their ids.
        settings, defaults = settings.model_dump(), DiffusersSettings().model_dump()
        return {name: value for name, value in settings.items() if name in FIRST_SETTINGS or value != defaults[name]}

    @classmethod
    def rate_key(cls, settings, real_size: int, gpus_per_actor: float | None) -> tuple[str, int]:
        return ("cpu" if settings.device == "cpu" else "gpu"), settings.resolution

    def __init__(self, settings: dict):
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        diffusers_logging.disable_progress_bar()
        settings = DiffusersSettings.model_validate(settings)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if settings.device == "auto" else settings.device
        options = {}
        if not settings.safety_checker:
            options = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(
                settings.model, revision=settings.revision, dtype=getattr(torch, settings.dtype), local_files_only=True, **options
            )
        except (OSError, ValueError, EnvironmentError) as exc:
            model = settings.model
            where = "directory" if Path(model).exists() or "/" not in model or model.startswith((".", "/")) else "model id"
            first = str(exc).strip().splitlines()[0][:200]
            raise ConfigError(f"config: generation.diffusers.model: cannot load a diffusers pipeline from {where} '{model}': {first}") from None
        if settings.scheduler:
            pipe.scheduler = _scheduler(pipe, settings.scheduler)
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        if settings.channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
        if settings.vae_slicing:
            pipe.vae.enable_slicing()
        if settings.compile:
            pipe.unet = torch.compile(pipe.unet, mode="max-autotune", fullgraph=True)
        self.pipe, self.device, self.torch = pipe, device, torch
        self.steps, self.guidance, self.resolution = settings.steps, settings.guidance, settings.resolution
        self.negative_prompt = settings.negative_prompt
        self.generator = f"{settings.model}@{settings.revision or 'main'} {type(pipe).__name__} {settings.dtype} {type(pipe.scheduler).__name__}"

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


def _check_components(folder: Path, skipped: tuple[str, ...]) -> None:
    """Every component ``model_index.json`` lists is there, and every model among them has its
    weights: a half-copied pipeline is refused here, not 138 lines of Ray trace later."""
    listed = json.loads((folder / "model_index.json").read_text())
    for name, entry in sorted(listed.items()):
        if name.startswith("_") or name in skipped or not isinstance(entry, list) or entry[0] is None:
            continue
        part = folder / name
        if not part.is_dir() or not any(part.iterdir()):
            raise ConfigError(f"config: generation.diffusers.model: {folder} lists the component '{name}' ({entry[1]}) but has no {name}/ folder")
        if (part / "config.json").is_file() and not any(f.name.endswith(WEIGHT_SUFFIXES) for f in part.iterdir()):
            raise ConfigError(f"config: generation.diffusers.model: {folder}/{name} has a config.json but no weights (*.safetensors or *.bin)")


def _scheduler(pipe, name: str):
    import diffusers

    compatible = sorted({cls.__name__ for cls in pipe.scheduler.compatibles} | {type(pipe.scheduler).__name__})
    if name not in compatible:
        raise ConfigError(f"config: generation.diffusers.scheduler: unknown scheduler '{name}' (known: {', '.join(compatible)})")
    return getattr(diffusers, name).from_config(pipe.scheduler.config)
