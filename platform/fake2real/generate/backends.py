"""Generator backends: plan rows in, images out (DESIGN §4 provenance alongside).

Every backend takes the same rows (``y``, ``b``, ``prompt``, ``seed``) and returns one RGB uint8
image per row; the actor in ``job.py`` encodes them and adds the contract's columns. The
Stable Diffusion backend plugs in here with the same signature.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from fake2real.sections import ShapesWorld
from fake2real.data.datasets import shapes
from fake2real.errors import ConfigError


class GeneratorBackend(ABC):
    # Provenance columns written with every row this backend makes.
    generator: str
    steps: int | None = None
    guidance: float | None = None

    @abstractmethod
    def generate(self, y: np.ndarray, b: np.ndarray, prompts: list[str], seeds: np.ndarray) -> list[np.ndarray]:
        """One (H, W, 3) uint8 image per row, a pure function of the row."""


class ProceduralBackend(GeneratorBackend):
    """The built-in world's synthetic renderer: same semantics as real, plus the G artifact."""

    def __init__(self, world: dict):
        self.world = ShapesWorld.model_validate(world)
        self.generator = (
            f"procedural:shapes/v1 artifact_strength={self.world.artifact_strength} "
            f"semantic_gap={self.world.semantic_gap}"
        )

    def generate(self, y, b, prompts, seeds):
        return [shapes.render(int(yy), int(bb), int(s), self.world, synthetic=True) for yy, bb, s in zip(y, b, seeds)]


def _diffusers(**kwargs) -> GeneratorBackend:
    # Imported on use: diffusers and transformers are heavy and only generation actors need them.
    from fake2real.generate.diffusers_backend import DiffusersBackend

    return DiffusersBackend(**kwargs)


BACKENDS = {"procedural": ProceduralBackend, "diffusers": _diffusers}


def make_backend(name: str, kwargs: dict) -> GeneratorBackend:
    if name not in BACKENDS:
        raise ConfigError(f"config: generation.backend: unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})")
    return BACKENDS[name](**kwargs)
