"""Encoding images for tables: PNG (lossless) or JPEG, optionally resized first."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_image(pixels: np.ndarray, image_format: str = "png", quality: int = 95, size: int | None = None) -> bytes:
    """uint8 (H, W, 3) → encoded bytes; ``size`` resizes to size × size (Lanczos) first."""
    image = Image.fromarray(pixels)
    if size and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if image_format == "png":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
