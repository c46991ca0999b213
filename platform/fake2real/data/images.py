"""Encoding images for tables (PNG, lossless, or JPEG; optionally resized first) and decoding them."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from fake2real.errors import DataError

if TYPE_CHECKING:  # type hints only: torch is imported where an image is decoded for training
    import torch

# Source images kept byte for byte when already the table's size: every reader decodes these
# formats and modes to RGB (``decode_rgb``), and a second JPEG pass would change the pixels a
# model sees (it moved one model's test WGA from 0.69 to 0.905 on the same images).
STORED_FORMATS = ("JPEG", "PNG")
STORED_MODES = ("RGB", "L")
# Larger source images are refused from their header, before any is decoded: one 10,000² PNG
# took an ingest's peak memory from 0.6 to 1.95 GB. Tables store at most 1024² (dataset.image_size);
# 40 megapixels leaves room for a camera's full-size photos.
MAX_MEGAPIXELS = 40


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


def store_image(data: bytes, size: int | None, quality: int, where: str) -> bytes:
    """The bytes a table stores for one source image (``where`` names it in errors).

    Always decoded, so a corrupt or truncated file is fatal; one over ``MAX_MEGAPIXELS`` is refused
    from its header, before it is decoded. A JPEG or PNG in RGB or L that is
    already ``size`` × ``size`` (any size when ``size`` is None) is stored as it is; any other
    image is converted to RGB, resized and stored as JPEG at ``quality``.
    """
    try:
        with warnings.catch_warnings():  # PIL's bomb warning starts above our limit: ours is the one line
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
        width, height = image.size
        if width * height > MAX_MEGAPIXELS * 1_000_000:
            raise DataError(f"{where}: {width} × {height} pixels ({width * height / 1e6:.1f} megapixels) is over the "
                            f"{MAX_MEGAPIXELS}-megapixel limit of an ingested image: downscale it first")
        image.load()
    except DataError:
        raise
    except Image.DecompressionBombError as exc:  # over PIL's own limit: refused by Image.open itself
        raise DataError(f"{where}: over the {MAX_MEGAPIXELS}-megapixel limit of an ingested image ({_first(exc)})") from None
    except Exception as exc:  # PIL raises several types for corrupt and truncated files
        raise DataError(f"{where}: cannot decode image ({_first(exc)})") from None
    fits = size is None or image.size == (size, size)
    if fits and image.format in STORED_FORMATS and image.mode in STORED_MODES:
        return data
    return encode_image(np.asarray(image.convert("RGB")), "jpeg", quality, size)


def _first(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]


def decode_rgb(data: bytes) -> torch.Tensor:
    """Encoded bytes of a table row → uint8 (3, H, W), as training sees them."""
    import torch
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
