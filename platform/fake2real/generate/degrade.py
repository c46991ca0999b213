"""Image degradations for the ``ffr_degraded`` ablation: how much does FFR need image quality?

Kinds, each at a severity 1–5:

- ``pixelate``: downsample to a share (0.6, 0.5, 0.4, 0.3, 0.25) of the side with box averaging
  and scale back with box resampling (kept bit for bit as first written: the plan ids and images
  of tables made with it stay valid).
- ``blur``: a Gaussian blur with σ = (1, 2, 3, 4, 6) pixels at 224², scaled to the image size.
- ``reference``: the reference's stack (mqraitem/From-Fake-to-Real, ``corrupt_image`` in
  datasets/dataset_gen.py): imagecorruptions 1.1.2 (ImageNet-C) ``pixelate`` → ``defocus_blur``
  → ``gaussian_noise``, all at the same severity, each step's result cast to uint8 as its
  ``corrupt()`` does (truncation). Its constants:

  - pixelate: share c = (0.6, 0.5, 0.4, 0.3, 0.25); BOX downscale to ``int(side · c)``, then
    NEAREST upscale (unlike our ``pixelate``'s BOX upscale).
  - defocus_blur: (radius, alias σ) = (3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5): a disk
    of that radius on a 17² grid (radius ≤ 8) or (2r+1)², normalised, smoothed by a 3×3 (5×5 for
    radius > 8) Gaussian of σ = alias, then correlated with each channel of the image in [0, 1]
    (borders reflected without repeating the edge: OpenCV's default, numpy's ``reflect``), clipped.
  - gaussian_noise: std c = (0.08, 0.12, 0.18, 0.26, 0.38) on [0, 1], then clipped. The reference
    drew it from numpy's global generator on every load (fresh noise each epoch); here it is drawn
    once, from the image's own seed, so a plan always yields the same images.

  Radii are pixels, **not** scaled to the image size (unlike ``blur``): the reference applied
  imagecorruptions to its synthetic images as stored, at full resolution (512² from SD), so a
  radius of 10 px is what its rebuttal's rows saw. (ImageNet-C defined them at 224², where they
  are 2.3× stronger relative to the image.) Here the stack runs on the generator's image before
  ``generation.output_size`` resizes it, i.e. at full resolution too.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from fake2real.seeding import stable_seed

KINDS = ("blur", "pixelate", "reference")

PIXELATE_SHARE = (0.6, 0.5, 0.4, 0.3, 0.25)
BLUR_SIGMA_AT_224 = (1.0, 2.0, 3.0, 4.0, 6.0)
# imagecorruptions 1.1.2: defocus_blur's (disk radius, alias_blur σ) and gaussian_noise's std.
DEFOCUS_RADIUS_ALIAS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)


def _gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """OpenCV's ``getGaussianKernel(size, sigma)`` for sigma > 0: sampled, normalised."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    weights = np.exp(-(x**2) / (2 * sigma**2))
    return weights / weights.sum()


def _correlate(plane: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D correlation of one small plane with an odd-sized kernel, borders reflected without
    repeating the edge (OpenCV's default BORDER_REFLECT_101): a sum of shifted copies."""
    kh, kw = kernel.shape
    padded = np.pad(plane, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="reflect")
    h, w = plane.shape
    out = np.zeros((h, w), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            out += float(kernel[i, j]) * padded[i : i + h, j : j + w]
    return out


def _correlate_channels(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``cv2.filter2D(image[..., d], -1, kernel)`` for every channel d of an (H, W, C) float64
    image: the same correlation with reflect-101 borders, by FFT (float64; ~1e-16 from a direct
    sum, as OpenCV's own DFT path for large kernels), 8× faster than shifted sums at 512²."""
    kh, kw = kernel.shape
    h, w = image.shape[:2]
    padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="reflect")
    shape = padded.shape[:2]
    flipped = kernel[::-1, ::-1].astype(np.float64)  # correlation = convolution with the flipped kernel
    spectrum = np.fft.rfft2(padded, s=shape, axes=(0, 1)) * np.fft.rfft2(flipped, s=shape)[..., None]
    # Circular convolution of the padded image: from (kh - 1, kw - 1) on, no output wraps around.
    return np.fft.irfft2(spectrum, s=shape, axes=(0, 1))[kh - 1 : kh - 1 + h, kw - 1 : kw - 1 + w]


def disk(radius: int, alias_blur: float) -> np.ndarray:
    """imagecorruptions' ``disk()``: the anti-aliased, normalised disk kernel (float32)."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    aliased = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    aliased /= aliased.sum()
    # cv2.GaussianBlur(aliased, (ksize, ksize), sigmaX=alias_blur): separable, reflect-101 borders.
    gauss = _gaussian_kernel_1d(ksize, alias_blur)
    smoothed = _correlate(aliased.astype(np.float64), np.outer(gauss, gauss))
    return smoothed.astype(np.float32)


def pixelate_nearest(image: np.ndarray, severity: int) -> np.ndarray:
    """imagecorruptions' ``pixelate``: BOX downscale to ``int(side · c)``, NEAREST back up."""
    picture = Image.fromarray(image)
    width, height = picture.size
    share = PIXELATE_SHARE[severity - 1]
    small = picture.resize((max(1, int(width * share)), max(1, int(height * share))), Image.Resampling.BOX)
    return np.asarray(small.resize((width, height), Image.Resampling.NEAREST))


def defocus_blur(image: np.ndarray, severity: int) -> np.ndarray:
    """imagecorruptions' ``defocus_blur`` on an RGB uint8 image, cast to uint8 as ``corrupt()`` does."""
    radius, alias = DEFOCUS_RADIUS_ALIAS[severity - 1]
    kernel = disk(radius, alias)
    channels = _correlate_channels(image.astype(np.float64) / 255.0, kernel)
    return (np.clip(channels, 0, 1) * 255).astype(np.uint8)


def gaussian_noise(image: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """imagecorruptions' ``gaussian_noise``, its noise drawn from ``seed``; cast to uint8 as ``corrupt()`` does."""
    rng = np.random.default_rng(stable_seed(seed, "gaussian_noise"))
    x = image.astype(np.float64) / 255.0
    noisy = np.clip(x + rng.normal(size=x.shape, scale=NOISE_STD[severity - 1]), 0, 1) * 255
    return noisy.astype(np.uint8)


def degrade(image: np.ndarray, kind: str, severity: int, seed: int | None = None) -> np.ndarray:
    """A degraded copy of an RGB uint8 (H, W, 3) image, same size.

    ``seed``: the image's seed, for the kinds that draw noise (``reference``).
    """
    if kind == "reference":
        if seed is None:
            raise ValueError("degradation 'reference' draws noise: pass the image's seed")
        return gaussian_noise(defocus_blur(pixelate_nearest(image, severity), severity), severity, seed)
    picture = Image.fromarray(image)
    width, height = picture.size
    if kind == "pixelate":
        share = PIXELATE_SHARE[severity - 1]
        small = picture.resize((max(1, round(width * share)), max(1, round(height * share))), Image.Resampling.BOX)
        picture = small.resize((width, height), Image.Resampling.BOX)
    elif kind == "blur":
        picture = picture.filter(ImageFilter.GaussianBlur(BLUR_SIGMA_AT_224[severity - 1] * width / 224.0))
    else:
        raise ValueError(f"unknown degradation '{kind}' (known: {', '.join(KINDS)})")
    return np.asarray(picture)
