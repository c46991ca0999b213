"""Datasets by name. Each module turns its native layout into the image-table contract."""

from __future__ import annotations

from fake2real.errors import ConfigError

from fake2real.data.datasets import shapes

DATASETS = {"shapes": shapes}


def get_dataset(name: str):
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(f"config: dataset.name: unknown dataset '{name}' (known: {', '.join(sorted(DATASETS))})") from None
