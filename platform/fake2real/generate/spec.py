"""The generation job's inputs (``job.py``): what each actor makes images with, and the actor pool."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageSpec:
    """What a generation actor makes and stores images with; a generated pool's identity holds it."""

    backend: str  # generation.backend
    settings: dict  # the backend's identity(config): what it is built from
    image_format: str = "png"
    quality: int = 95  # JPEG quality
    output_size: int | None = None  # stored at output_size² (None: as made)
    filters: list[dict] = field(default_factory=list)  # reject filters (filters.py)
    max_attempts: int = 3
    degradation: dict | None = None  # the ffr_degraded ablation's {kind, severity}
    # Where what the backend loads is (e.g. a trained generator's folder): found at run time, not
    # part of the pool's identity (``settings`` is).
    inputs: dict = field(default_factory=dict)

    @property
    def stored(self) -> list:
        """How images are stored and filtered, as a pool's identity lists it."""
        return [self.image_format, self.quality, self.output_size, self.filters, self.max_attempts]


@dataclass(frozen=True)
class ActorPool:
    """Ray Data's actor pool: min_actors..num_actors actors, each with these resources."""

    batch_size: int = 64
    min_actors: int = 1
    num_actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
