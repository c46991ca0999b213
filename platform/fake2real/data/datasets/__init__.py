"""Datasets by name. Each module turns its native layout into the image-table contract.

``shapes`` and ``fashion_mnist`` write their own tables (``build_real_table``; they hold no image
files to list); the others list their images (``list_images``) and name their classes and bias
values (``names``), and ``data/ingest.py`` does the rest. ``folder`` reads any folder of
images described by one metadata file (no code per dataset).
"""

from __future__ import annotations

from fake2real.data.datasets import celeba, celebahq, fashion_mnist, folder, shapes, spuco_animals, utkface, waterbirds
from fake2real.data.table import TableInfo
from fake2real.errors import ConfigError

DATASETS = {m.NAME: m for m in (shapes, fashion_mnist, celeba, celebahq, utkface, spuco_animals, waterbirds, folder)}


def get_dataset(name: str):
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"config: dataset.name: unknown dataset '{name}' (known: {', '.join(sorted(DATASETS))})") from None


def build_real_table(config, path) -> TableInfo:
    """The real table of ``config`` at ``path`` (a local folder or a URI)."""
    module = get_dataset(config.name)
    if hasattr(module, "build_real_table"):  # it makes its images itself
        return module.build_real_table(config, path)
    from fake2real.data.ingest import build_native_table

    return build_native_table(config, module, path)


def stored_image_size(config) -> int:
    """The side of the images the real table of ``config`` (a ``DatasetConfig``) stores."""
    if config.name == "shapes":
        return config.shapes.image_size
    return getattr(get_dataset(config.name), "STORED_SIZE", config.image_size)
