"""Encoding images for tables (PNG, lossless, or JPEG; optionally resized first) and decoding them."""

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


def decode_rgb(data: bytes) -> "torch.Tensor":
    """Encoded bytes of a table row → uint8 (3, H, W), as training sees them."""
    import torch
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
