"""What a dataset is: one class per dataset, registered in ``data/datasets/__init__.py``.

A dataset owns everything that differs between datasets, so no module outside this folder names
one: its own config section (``dataset.<name>``, a ``DatasetSettings``), which of the shared
``dataset`` fields it reads (what a run logs of them, and what is refused when set on another),
its checks, its class and bias names, its listing (the real table's rows, no pixels: what a dry
run counts) and how its real table is written, its reference majority map, its own prompts, and
the images it sets apart for training a generator. ``NativeDataset`` is a dataset read from its
native layout (``list_images``); ``data/ingest.py`` does the rest.

Its methods receive the ``dataset`` section (``DatasetConfig``, assembled in ``sections.py``
from the shared fields and every dataset's own section; typed ``Section`` here, below the config).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable, ClassVar, Optional

from fake2real.errors import ConfigError
from fake2real.section_base import _Section

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

    from fake2real.data.table import TableInfo

# The dataset section, ``DatasetConfig``: assembled above this layer (docs/design.md §2), so typed by its base here.
Section = _Section

# Shared fields of a dataset read from files: where they are, and how its images are stored.
FILE_FIELDS = ("root", "table", "image_size", "jpeg_quality")


class DatasetSettings(_Section):
    """A dataset's own section, ``dataset.<name>``."""

    # Knobs of a synthetic renderer alone: the real table does not depend on them.
    SYNTHETIC_ONLY: ClassVar[tuple[str, ...]] = ()

    def real_part(self) -> "DatasetSettings":
        """This section with its synthetic-only knobs at their defaults: what the real table's identity reads."""
        return self.model_copy(update={name: type(self).model_fields[name].default for name in self.SYNTHETIC_ONLY})


class Dataset(ABC):
    name: ClassVar[str]  # dataset.name
    Settings: ClassVar[Optional[type[DatasetSettings]]] = None  # its own section, dataset.<name>
    # Its section was in every job's key from the start; a section that came later joins a key
    # only when set, so the jobs stored before it keep their keys.
    section_in_every_key: ClassVar[bool] = False
    reads: ClassVar[tuple[str, ...]] = FILE_FIELDS  # the shared dataset fields it reads
    MAJORITY_BIAS: ClassVar[dict] = {}  # class → its majority bias, the reference's; {}: none
    # The attributes (class, bias) the reference's map is for (attribute datasets); None: any.
    MAJORITY_BIAS_ATTRIBUTES: ClassVar[Optional[tuple[str, str]]] = None
    # The ratio the reference's protocol first cuts train and valid to; None: no base step.
    REFERENCE_BASE_RATIO: ClassVar[Optional[float]] = None
    default_root: ClassVar[Optional[str]] = None  # where it is when dataset.root is unset; None: required
    # Its images are photographs: a pretrainable model starts from ImageNet weights, as in the paper.
    photographs: ClassVar[bool] = True
    # The user's own files, edited in place: the real table records their stamps, checked on every later run.
    records_sources: ClassVar[bool] = False

    @classmethod
    def check(cls, section: Section) -> None:
        """Checks of the section for this dataset (a ValueError naming the field); after the shared ones."""
        if not section.root and cls.default_root is None:
            raise ValueError(f"dataset.root is required for dataset '{cls.name}' (the folder of its native layout)")

    @classmethod
    @abstractmethod
    def names(cls, section: Section) -> tuple[list[str], list[str]]:
        """Its class names and bias value names, in index order."""

    @classmethod
    @abstractmethod
    def listing(cls, section: Section) -> pa.Table:
        """The real table's rows after the bias-ratio rule, no pixels (what a dry run counts); raises on bad input."""

    @classmethod
    @abstractmethod
    def build_real_table(cls, section: Section, path) -> TableInfo:
        """Write its real table at ``path`` (a local folder or a URI)."""

    @classmethod
    def stored_image_size(cls, section: Section) -> int:
        """The side of the images its real table stores."""
        return section.image_size

    @classmethod
    def sources_key(cls, section: Section) -> str:
        """What of the user's files names its real table besides the section ('' for nothing)."""
        return ""

    @classmethod
    def prompts(cls, section: Section) -> Optional[Callable[[int, int, int, bool], str]]:
        """Its own prompt of a group, (y, b, seed, bias_words) → text; None: a template is needed."""
        return None

    @classmethod
    def unprompted_bias(cls, section: Section) -> Optional[Callable[[int, int, int], int]]:
        """(y, b, seed) → the bias value its synthetic renderer draws when a prompt names none; None:
        a generator picks it unseen (the b column is then the group requested)."""
        return None

    @classmethod
    def synthetic_world(cls, section: Section) -> Optional[dict]:
        """The world the procedural renderer draws for it; None: it has no procedural renderer."""
        return None

    @classmethod
    def held_apart_key(cls, section: Section) -> Optional[dict]:
        """What the images it sets apart for training a generator depend on; None: it sets none apart."""
        return None

    @classmethod
    def held_apart_table(cls, section: Section, path) -> TableInfo:
        """Write the images it sets apart for training a generator at ``path``."""
        raise ConfigError(f"config: dataset '{cls.name}' sets no images apart to train a generator on")


class NativeDataset(Dataset):
    """A dataset read from its native layout: it lists its images; ``data/ingest.py`` checks the
    listing, subsamples it and writes the table on Ray Data."""

    @classmethod
    @abstractmethod
    def list_images(cls, section: Section, fs: pafs.FileSystem, root: str) -> pa.Table:
        """Every image of the layout: id, path, y, b, split; raises naming the file on bad input."""

    @classmethod
    def listing(cls, section: Section) -> pa.Table:
        from fake2real.data.ingest import listing

        return listing(section, cls)

    @classmethod
    def build_real_table(cls, section: Section, path) -> TableInfo:
        from fake2real.data.ingest import build_native_table

        return build_native_table(section, cls, path)
