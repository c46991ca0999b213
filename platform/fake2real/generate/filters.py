"""Reject filters for generated images; a rejected row is generated again with a derived seed.

``grayscale`` is the paper's: Stable Diffusion sometimes returns black-and-white images, which
would make colour a shortcut. More filters (e.g. a CLIP prompt-consistency check with the user's
CLIP weights) join ``FILTERS`` with the same ``reject(image, prompt) -> bool`` signature.
"""

from __future__ import annotations

import numpy as np

from fake2real.errors import ConfigError


class GrayscaleFilter:
    """Reject an image whose mean per-pixel channel spread (max − min, 0..255) is below ``threshold``."""

    def __init__(self, threshold: float = 4.0):
        self.threshold = float(threshold)

    def reject(self, image: np.ndarray, prompt: str) -> bool:
        pixels = image.astype(np.int16)
        spread = pixels.max(axis=-1) - pixels.min(axis=-1)
        return float(spread.mean()) < self.threshold


FILTERS = {"grayscale": GrayscaleFilter}


def make_filters(specs: list[dict]) -> list:
    filters = []
    for spec in specs:
        spec = dict(spec)
        name = spec.pop("name", None)
        if name not in FILTERS:
            raise ConfigError(f"config: generation.filters: unknown filter '{name}' (known: {', '.join(sorted(FILTERS))})")
        try:
            filters.append(FILTERS[name](**spec))
        except TypeError as exc:
            raise ConfigError(f"config: generation.filters: {name}: {exc}") from None
    return filters
