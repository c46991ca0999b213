"""``generation.backend: group_diffusion``: a (class, bias)-conditional diffusion model, the group
as its condition instead of a prompt (``group_pipeline.py``), sampled with DDIM in Ray Data actors.

The generator is either a folder the user gives (``generation.group_diffusion.model``: a diffusers
folder with ``groups.json``, e.g. one this platform trained elsewhere) or, by default, one the
platform trains itself on the dataset's held-apart images (``training``; a dataset offers them
with ``held_apart_table``, e.g. ``fashion_mnist``), once, found again by its key
(``generate/generator_training.py``; ``jobs/train_generator.py`` trains it alone). A pool's
identity holds the generator's key (or the folder and a digest of its weights) and the sampler's
settings, never where the generator is stored.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal, Optional

import numpy as np
from pydantic import Field, field_validator

from fake2real.data.datasets import dataset_of
from fake2real.errors import ConfigError, DataError
from fake2real.generate.base import GeneratorBackend
from fake2real.section_base import Seed, _Section

FIELD = "generation.group_diffusion.model"


class GeneratorTraining(_Section):
    """``generation.group_diffusion.training``: how the platform trains the generator."""

    # The UNet: one resolution level per entry (multiples of 8); self-attention at the lowest level.
    channels: list[int] = [16, 32, 64]
    layers_per_block: int = Field(1, ge=1, le=4)
    attention: bool = False
    steps: int = Field(3000, ge=1)  # optimizer steps
    batch_size: int = Field(128, ge=1)  # global, split over the workers
    lr: float = Field(1e-3, gt=0)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    seed: Seed = 0
    # How it runs (not part of the generator's key):
    num_workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(2.0, gt=0)
    use_gpu: bool = False
    checkpoint_every: int = Field(500, ge=1)  # steps between checkpoints, loss reports and sample grids
    # The quality check (generate/generator_quality.py): generated images per group it judges, and
    # the epochs its two real-image readers train.
    quality_images_per_group: int = Field(100, ge=1)
    quality_reader_epochs: int = Field(8, ge=1)

    HOW_IT_RUNS: ClassVar[tuple[str, ...]] = ("num_workers", "cpus_per_worker", "use_gpu", "checkpoint_every", "quality_images_per_group",
                                              "quality_reader_epochs")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if not 1 <= len(value) <= 5 or any(c < 8 or c % 8 for c in value):
            raise ValueError(f"generation.group_diffusion.training.channels: 1 to 5 levels, each a multiple of 8, got {value}")
        return value

    def computing(self) -> dict:
        """The fields that determine the generator (its key)."""
        return self.model_dump(exclude=set(self.HOW_IT_RUNS))


class GroupDiffusionSettings(_Section):
    """``generation.group_diffusion``: which generator, and how it samples."""

    # A trained generator's folder (local or URI); None: the platform trains one (``training``).
    model: Optional[str] = None
    steps: int = Field(25, ge=1, le=1000)  # DDIM steps
    eta: float = Field(0.0, ge=0.0, le=1.0)  # DDIM's η: 0 deterministic, 1 DDPM-like
    device: Literal["auto", "cuda", "cpu"] = "auto"
    training: GeneratorTraining = GeneratorTraining()


def _held_apart_key(dataset) -> dict:
    """What the images ``dataset`` (its section) sets apart for a generator depend on, else a one-line refusal."""
    key = dataset_of(dataset).held_apart_key(dataset)
    if key is None:
        raise ConfigError(f"config: {FIELD} is required for dataset '{dataset.name}' (it sets no images apart "
                          "to train a generator on): give a trained generator's folder")
    return key


def generator_spec(settings: GroupDiffusionSettings, dataset, table: str = ""):
    """The ``GeneratorSpec`` the platform trains for these settings and ``dataset`` (``table``: where its images are)."""
    from fake2real.generate.generator_training import GeneratorSpec

    key = _held_apart_key(dataset)
    class_names, bias_names = dataset_of(dataset).names(dataset)
    return GeneratorSpec(table, key, tuple(class_names), tuple(bias_names), settings.training.computing())


def _weights_digest(folder: str) -> str:
    """sha256 (16 hex) of the UNet's weights: a folder trained again is another generator."""
    from fake2real.data.storage import Location, get_bytes, list_names

    unet = Location(folder) / "unet"
    names = sorted(list_names(unet, suffix=".safetensors") + list_names(unet, suffix=".bin"))
    if not names:
        raise ConfigError(f"config: {FIELD}: {folder} has no unet/ weights (*.safetensors or *.bin)")
    return hashlib.sha256(b"".join(get_bytes(unet / name) for name in names)).hexdigest()[:16]


class GroupDiffusionBackend(GeneratorBackend):
    name = "group_diffusion"
    Settings = GroupDiffusionSettings
    image_format = "png"  # small images, lossless: what the generator made
    conditioned_on_groups = True

    @classmethod
    def check(cls, settings, dataset) -> None:
        if settings.model is None:
            _held_apart_key(dataset)
            return
        from fake2real.data.storage import Location, is_file, local_folder

        if not is_file(Location(settings.model) / "model_index.json"):
            raise ConfigError(f"config: {FIELD}: no generator at '{settings.model}' (a folder with model_index.json, unet/, scheduler/ and groups.json)")
        from fake2real.generate.group_pipeline import read_groups

        with local_folder(settings.model) as folder:
            trained = read_groups(folder, FIELD)
        wanted = tuple(list(names) for names in dataset_of(dataset).names(dataset))
        if trained != wanted:
            raise ConfigError(f"config: {FIELD}: {settings.model} was trained for classes {trained[0]} × biases {trained[1]}, "
                              f"not dataset {dataset.name}'s {wanted[0]} × {wanted[1]}")
        _weights_digest(settings.model)

    @classmethod
    def identity(cls, settings, dataset) -> dict:
        if settings.model is None:
            made_by = {"generator": generator_spec(settings, dataset).key()}
        else:
            made_by = {"model": settings.model, "weights": _weights_digest(settings.model)}
        return {**made_by, "steps": settings.steps, "eta": settings.eta, "device": settings.device}

    @classmethod
    def trained_generator(cls, settings, dataset, max_failures: int):
        """The generator the platform must train before it generates (None: the user gave one)."""
        from fake2real.generate.generator_training import GeneratorJob, GeneratorResources

        if settings.model is not None:
            return None
        training = settings.training
        resources = GeneratorResources(training.num_workers, training.cpus_per_worker, training.use_gpu, training.checkpoint_every,
                                       max_failures)
        return GeneratorJob(generator_spec(settings, dataset), resources, training.quality_images_per_group, training.quality_reader_epochs,
                            settings.steps, settings.eta)

    @classmethod
    def rate_key(cls, settings, real_size: int, gpus_per_actor: float | None) -> tuple[str, int]:
        device = settings.device
        on_gpu = device == "cuda" or (device == "auto" and bool(gpus_per_actor))
        return ("gpu" if on_gpu else "cpu"), real_size

    def __init__(self, settings: dict):
        import torch

        from fake2real.data.storage import local_folder
        from fake2real.generate.group_pipeline import load_pipeline, read_groups

        # ``model_uri`` is where the trained generator is (pools.py adds it; not part of the identity).
        where = settings.get("model") or settings["model_uri"]
        device = ("cuda" if torch.cuda.is_available() else "cpu") if settings["device"] == "auto" else settings["device"]
        with local_folder(where) as folder:
            self.class_names, self.bias_names = read_groups(folder, FIELD)
            self.pipe = load_pipeline(folder, device, FIELD)
        self.torch, self.steps, self.eta, self.guidance = torch, settings["steps"], settings["eta"], None
        made_by = settings.get("generator") and f"generator-{settings['generator']}" or where
        self.generator = f"group_diffusion:{made_by} DDIM eta={self.eta}"

    def generate(self, y, b, prompts, seeds):
        torch = self.torch
        for yy, bb in zip(np.asarray(y).tolist(), np.asarray(b).tolist()):
            if not (0 <= yy < len(self.class_names) and 0 <= bb < len(self.bias_names)):
                raise DataError(f"generation.group_diffusion: asked for group y{yy}_b{bb}; the generator was trained for "
                                f"{len(self.class_names)} classes × {len(self.bias_names)} biases ({', '.join(self.class_names)} × "
                                f"{', '.join(self.bias_names)})")
        labels = (np.asarray(y) * len(self.bias_names) + np.asarray(b)).tolist()
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        return list(self.pipe(labels, generators, num_inference_steps=self.steps, eta=self.eta))
