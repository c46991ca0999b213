"""What ``images.store_image`` refuses before it decodes: a source image over the pixel limit,
read from its header (a 10,000² PNG would take gigabytes to decode)."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image

from fake2real.data.images import MAX_MEGAPIXELS, store_image
from fake2real.errors import DataError


def png_claiming(width: int, height: int) -> bytes:
    """A 1×1 PNG whose header says ``width`` × ``height``: its pixel data cannot fill that, so
    decoding it fails; only a check of the header before decoding gives the size's message."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8 + 8  # the signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    return bytes(data)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header_in_one_line():
    assert MAX_MEGAPIXELS == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning (over 89 megapixels) is not a second line
        with pytest.raises(DataError) as info:
            store_image(png_claiming(10_000, 10_000), 224, 95, "/data/pets/images/huge.png")
    assert str(info.value) == ("/data/pets/images/huge.png: 10000 × 10000 pixels (100.0 megapixels) is over the 40-megapixel "
                               "limit of an ingested image: downscale it first")
    # Over PIL's own limit (2 × 89 megapixels) Image.open refuses it itself: the same limit is named.
    with pytest.raises(DataError, match=r"^big\.png: over the 40-megapixel limit of an ingested image \(Image size \(400000000 pixels\)"):
        store_image(png_claiming(20_000, 20_000), 224, 95, "big.png")


def test_an_image_at_the_limit_is_decoded():
    # 8000 × 5000 is 40 megapixels exactly: decoded (and this one, a 1×1 image in disguise, fails as corrupt).
    with pytest.raises(DataError, match=r"^at\.png: cannot decode image \("):
        store_image(png_claiming(8_000, 5_000), 224, 95, "at.png")
    small = png_claiming(1, 1)
    assert store_image(small, None, 95, "small.png") == small
