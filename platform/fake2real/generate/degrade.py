"""Image degradations for the ``ffr_degraded`` ablation: how much does FFR need image quality?

Severities 1–5 follow ImageNet-C's scales relative to the image size: ``pixelate`` downsamples
to a share (0.6, 0.5, 0.4, 0.3, 0.25) of the side with box averaging and scales back;
``blur`` is a Gaussian blur with σ = (1, 2, 3, 4, 6) pixels at 224², scaled to the image size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

PIXELATE_SHARE = (0.6, 0.5, 0.4, 0.3, 0.25)
BLUR_SIGMA_AT_224 = (1.0, 2.0, 3.0, 4.0, 6.0)


def degrade(image: np.ndarray, kind: str, severity: int) -> np.ndarray:
    """A degraded copy of an RGB uint8 (H, W, 3) image, same size."""
    picture = Image.fromarray(image)
    width, height = picture.size
    if kind == "pixelate":
        share = PIXELATE_SHARE[severity - 1]
        small = picture.resize((max(1, round(width * share)), max(1, round(height * share))), Image.Resampling.BOX)
        picture = small.resize((width, height), Image.Resampling.BOX)
    elif kind == "blur":
        picture = picture.filter(ImageFilter.GaussianBlur(BLUR_SIGMA_AT_224[severity - 1] * width / 224.0))
    else:
        raise ValueError(f"unknown degradation '{kind}' (known: blur, pixelate)")
    return np.asarray(picture)
