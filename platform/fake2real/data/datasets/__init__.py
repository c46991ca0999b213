"""Datasets by name (``dataset.name``): what each is, ``data/datasets/base.py``.

A new dataset is its own file here and one entry in ``DATASETS``: its section joins the config
as ``dataset.<name>`` (``sections.py``), and everything else asks it. ``shapes`` and
``fashion_mnist`` write their own tables (they hold no image files to list); the others list
their images (``NativeDataset``) and ``data/ingest.py`` does the rest. ``folder`` reads any
folder of images described by one metadata file (no code per dataset).
"""

from __future__ import annotations

from fake2real.data.datasets.base import FILE_FIELDS, Dataset
from fake2real.data.datasets.celeba import CelebA
from fake2real.data.datasets.celebahq import CelebAHQ
from fake2real.data.datasets.fashion_mnist import FashionMnist
from fake2real.data.datasets.folder import Folder
from fake2real.data.datasets.shapes import Shapes
from fake2real.data.datasets.spuco_animals import SpucoAnimals
from fake2real.data.datasets.utkface import UTKFace
from fake2real.data.datasets.waterbirds import Waterbirds
from fake2real.errors import ConfigError

DATASETS: dict[str, type[Dataset]] = {
    dataset.name: dataset for dataset in (Shapes, FashionMnist, CelebA, CelebAHQ, UTKFace, SpucoAnimals, Waterbirds, Folder)
}
# Shared dataset fields that only some datasets read beyond their files' (``FILE_FIELDS``):
# refused on another dataset when set (``sections.py``).
OWN_FIELDS = {field: [d.name for d in DATASETS.values() if field in d.reads]
              for d in DATASETS.values() for field in d.reads if field not in FILE_FIELDS}


def unknown_dataset(name: str) -> str:
    return f"dataset.name: unknown dataset '{name}' (known: {', '.join(sorted(DATASETS))})"


def get_dataset(name: str) -> type[Dataset]:
    if name not in DATASETS:
        raise ConfigError(f"config: {unknown_dataset(name)}")
    return DATASETS[name]


def dataset_of(section) -> type[Dataset]:
    """The dataset ``section.name`` (a ``DatasetConfig``) names."""
    return get_dataset(section.name)


def logged_params(section, mode: str = "python") -> dict:
    """The dataset section as a dict, without the fields its dataset does not read that are still
    at their defaults (CelebA's attributes on ``shapes``, the procedural world on a real dataset):
    every field that was set is kept."""
    fields = type(section).model_fields
    some_only = {field for d in DATASETS.values() for field in d.reads} | {d.name for d in DATASETS.values() if d.Settings}
    dataset = dataset_of(section)
    read = set(dataset.reads) | ({dataset.name} if dataset.Settings else set())
    unused = {name for name in some_only - read if getattr(section, name) == fields[name].get_default(call_default_factory=True)}
    return section.model_dump(mode=mode, exclude=unused)
