"""``generation.backend: procedural``: the built-in world's synthetic renderer — the real
renderer's semantics plus the G artifact (``data/datasets/shapes.py``). It renders the world of
``dataset.shapes``: its own section is empty."""

from __future__ import annotations

from fake2real.data.datasets import dataset_of
from fake2real.data.datasets.shapes import ShapesWorld, render
from fake2real.errors import ConfigError
from fake2real.generate.base import GeneratorBackend
from fake2real.section_base import _Section


class ProceduralSettings(_Section):
    """``generation.procedural``: nothing of its own (the world is ``dataset.shapes``)."""


class ProceduralBackend(GeneratorBackend):
    name = "procedural"
    Settings = ProceduralSettings
    image_format = "png"  # lossless: the artifact is a few intensity levels

    @classmethod
    def check(cls, settings, dataset) -> None:
        if dataset_of(dataset).synthetic_world(dataset) is None:
            raise ConfigError(
                "config: generation.backend: 'procedural' renders only the built-in shapes world; synthetic data for "
                f"'{dataset.name}' needs generation.backend=diffusers and generation.diffusers.model, or generation.backend=folder "
                "(or train.mixture=none and generation.test_images_per_group=0)"
            )

    @classmethod
    def identity(cls, settings, dataset) -> dict:
        return {"world": dataset_of(dataset).synthetic_world(dataset)}

    def __init__(self, settings: dict):
        self.world = ShapesWorld.model_validate(settings["world"])
        self.generator = f"procedural:shapes/v1 artifact_strength={self.world.artifact_strength} semantic_gap={self.world.semantic_gap}"

    def generate(self, y, b, prompts, seeds):
        return [render(int(yy), int(bb), int(s), self.world, synthetic=True) for yy, bb, s in zip(y, b, seeds)]
