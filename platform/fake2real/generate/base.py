"""What a generator backend is: one class per way of making a synthetic pool, registered in
``generate/backends.py``.

A backend owns its config section (``generation.<name>``), its checks before any Ray work, what
it adds to a pool's identity, the image format its pools store by default, whether its actors
take a GPU by default, and how its images are made: by a ``GeneratorBackend`` built in each
generation actor (``job.py``), or imported once by an ``ImportBackend`` (a pool that cannot grow).
Its methods receive its own section (``settings``) and, where its images depend on it, the
``dataset`` section; never the whole config nor a pool (``prepare/pool_sources.py`` owns pools).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from fake2real.section_base import _Section

if TYPE_CHECKING:
    import pyarrow as pa

    from fake2real.data.table import TableInfo


class Backend(ABC):
    name: ClassVar[str]  # generation.backend; its section is generation.<name>
    Settings: ClassVar[type[_Section]]
    image_format: ClassVar[str] = "jpeg"  # what its pools store when generation.image_format is None
    uses_gpu: ClassVar[bool] = False  # its actors take one GPU by default when the cluster has GPUs
    # Its images are made for a (y, b) group, not from a prompt: it cannot leave the bias out.
    conditioned_on_groups: ClassVar[bool] = False

    @classmethod
    def check_settings(cls, settings: _Section) -> None:
        """Checks of its own section when it is the chosen backend: a ValueError naming the field."""
        return None  # an optional hook: no checks by default

    @classmethod
    def check(cls, settings: _Section, dataset: _Section) -> None:
        """Driver-side checks before any Ray work (``dataset``: the dataset section): a ConfigError naming the field."""
        return None  # an optional hook: no checks by default

    @classmethod
    @abstractmethod
    def identity(cls, settings: _Section, dataset: _Section) -> dict:
        """What makes its images, in the pool's identity; a generator's actors build from it."""

    @classmethod
    def trained_generator(cls, settings: _Section, dataset: _Section, max_failures: int):
        """The ``GeneratorJob`` the platform runs before this backend generates; None: nothing to train."""
        return None

    @classmethod
    def rate_key(cls, settings: _Section, real_size: int, gpus_per_actor: float | None) -> tuple[str, int]:
        """(device, image size) its generation rate is measured at (``cost.MEASURED``)."""
        return "cpu", real_size


class GeneratorBackend(Backend):
    """Makes images in each generation actor: plan rows in, one RGB uint8 image per row out; the
    actor encodes them and adds the contract's columns (docs/design.md §4: provenance alongside)."""

    # Provenance columns written with every row this backend makes.
    generator: str
    steps: int | None = None
    guidance: float | None = None

    @abstractmethod
    def __init__(self, settings: dict):
        """Built once per actor from ``identity(settings, dataset)``."""

    @abstractmethod
    def generate(self, y: np.ndarray, b: np.ndarray, prompts: list[str], seeds: np.ndarray) -> list[np.ndarray]:
        """One (H, W, 3) uint8 image per row, a pure function of the row."""


class ImportBackend(Backend):
    """Images made elsewhere, imported once as a pool: it holds what its source lists."""

    @classmethod
    @abstractmethod
    def listed(cls, settings: _Section, class_names: list[str], bias_names: list[str], split: str | None = None,
               identity: dict | None = None) -> pa.Table:
        """The images it imports (path, y, b, split, prompt, seed, generator; sorted by (y, b), the
        source's order kept within a group), every file and label checked; ``split``: that split's
        only; ``identity``: the pool identity they must still match (the source changed: refused)."""

    @classmethod
    @abstractmethod
    def build(cls, settings: _Section, rows: pa.Table, pool_id: str, location, info: TableInfo, size: int | None, quality: int) -> None:
        """The table of pool ``pool_id`` at ``location`` from ``listed``'s rows of its split."""

    @classmethod
    @abstractmethod
    def source(cls, settings: _Section) -> str:
        """Where its images come from, for messages."""
