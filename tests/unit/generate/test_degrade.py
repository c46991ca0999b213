"""Degradations of the ffr_degraded ablation: the reference's stack (imagecorruptions 1.1.2's
pixelate → defocus_blur → gaussian_noise), its constants, order and seeding, and the generator
actor that applies it; ``pixelate`` and ``blur`` as first written."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from fake2real.data.datasets.shapes import ShapesWorld
from fake2real.data.datasets.shapes import prompt
from fake2real.generate import degrade as D
from fake2real.generate.degrade import degrade, defocus_blur, disk, gaussian_noise, pixelate_nearest
from fake2real.generate.job import GeneratorActor
from fake2real.generate.spec import ImageSpec
from fake2real.generate.plan import build_plan

IMAGE = np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)


def test_reference_constants_per_severity():
    # imagecorruptions 1.1.2 (ImageNet-C), severities 1..5
    assert D.PIXELATE_SHARE == (0.6, 0.5, 0.4, 0.3, 0.25)
    assert D.DEFOCUS_RADIUS_ALIAS == ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
    assert D.NOISE_STD == (0.08, 0.12, 0.18, 0.26, 0.38)


def test_disk_kernel():
    for radius, alias in D.DEFOCUS_RADIUS_ALIAS:
        kernel = disk(radius, alias)
        assert kernel.dtype == np.float32
        assert kernel.shape == ((17, 17) if radius <= 8 else (2 * radius + 1,) * 2)
        assert np.array_equal(kernel, kernel.T) and np.array_equal(kernel, kernel[::-1])
    # Normalised before its smoothing; from radius 8 on the disk reaches the grid's edge, where the
    # reflected border adds mass (1.3 %, 1.1 %): the reference brightens flat areas as well.
    assert [round(float(disk(r, a).sum()), 4) for r, a in D.DEFOCUS_RADIUS_ALIAS] == [1.0, 1.0, 1.0, 1.013, 1.0108]
    # alias σ = 0.1: the 3×3 smoothing barely touches the aliased disk of radius 3 (29 pixels)
    kernel = disk(3, 0.1)
    assert np.count_nonzero(kernel > 1e-6) == 29
    assert kernel[8, 8] == pytest.approx(1 / 29, rel=1e-6)
    assert kernel[8, 8 + 4] < 1e-10  # outside the radius


def test_defocus_and_pixelate_match_imagecorruptions_with_opencv():
    # Recorded once from imagecorruptions 1.1.2's defocus_blur / pixelate (OpenCV 5.0, Pillow 12)
    # on this image, each cast to uint8 as its corrupt() does.
    assert [int(defocus_blur(IMAGE, s).astype(np.int64).sum()) for s in range(1, 6)] == [545579, 545472, 545532, 552743, 551588]
    assert [int(pixelate_nearest(IMAGE, s).astype(np.int64).sum()) for s in range(1, 6)] == [550164, 550620, 550681, 549035, 549552]
    # Its float32 kernel does not sum to exactly 1: a flat 200 comes out 199 or 202, as there.
    flat = np.full((40, 36, 3), 200, dtype=np.uint8)
    assert [int(defocus_blur(flat, s)[20, 18, 0]) for s in range(1, 6)] == [199, 199, 199, 202, 202]


def test_pixelate_nearest_upscales_blocks():
    out = pixelate_nearest(IMAGE, 5)  # 36 × 40 → 9 × 10 (int(side · 0.25)), then NEAREST back
    small = np.asarray(Image.fromarray(IMAGE).resize((9, 10), Image.Resampling.BOX))
    assert out.shape == IMAGE.shape
    assert np.array_equal(out, np.asarray(Image.fromarray(small).resize((36, 40), Image.Resampling.NEAREST)))
    assert np.array_equal(out[:4, :4], np.broadcast_to(small[0, 0], (4, 4, 3)))  # 4×4 blocks


def test_gaussian_noise_std_and_clip():
    grey = np.full((128, 128, 3), 128, dtype=np.uint8)
    for severity in (1, 2):  # little clipping at 128 ± 3σ
        noisy = gaussian_noise(grey, severity, seed=1)
        assert noisy.dtype == np.uint8
        assert noisy.astype(float).std() / 255 == pytest.approx(D.NOISE_STD[severity - 1], rel=0.03)
    assert gaussian_noise(np.full((8, 8, 3), 255, np.uint8), 5, seed=1).max() == 255  # clipped, not wrapped


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_reference_stack_is_pixelate_then_defocus_then_noise(severity):
    out = degrade(IMAGE, "reference", severity, seed=7)
    expected = gaussian_noise(defocus_blur(pixelate_nearest(IMAGE, severity), severity), severity, seed=7)
    assert out.dtype == np.uint8 and out.shape == IMAGE.shape
    assert np.array_equal(out, expected)
    # the order matters: blurring the noise (or pixelating last) is another image
    assert not np.array_equal(out, defocus_blur(gaussian_noise(pixelate_nearest(IMAGE, severity), severity, seed=7), severity))
    assert not np.array_equal(out, pixelate_nearest(gaussian_noise(defocus_blur(IMAGE, severity), severity, seed=7), severity))


def test_reference_stack_is_seeded():
    first = degrade(IMAGE, "reference", 3, seed=11)
    assert np.array_equal(first, degrade(IMAGE, "reference", 3, seed=11))
    assert not np.array_equal(first, degrade(IMAGE, "reference", 3, seed=12))
    with pytest.raises(ValueError, match="pass the image's seed"):
        degrade(IMAGE, "reference", 3)


def test_pixelate_and_blur_are_as_first_written():
    # sha256 of degrade(IMAGE, "pixelate", s) before the reference stack was added: stored
    # ffr_degraded tables stay what their plans say.
    digests = ["905e714c71d14d08", "a50879528b86618b", "c4d41d0bf2b6ba76", "cf1adc614af2dfba", "41c34c4f5823f2e0"]
    assert [hashlib.sha256(degrade(IMAGE, "pixelate", s).tobytes()).hexdigest()[:16] for s in range(1, 6)] == digests
    assert [int(degrade(IMAGE, "blur", s).astype(np.int64).sum()) for s in range(1, 6)] == [548236, 548426, 548455, 548337, 548340]
    with pytest.raises(ValueError, match=r"unknown degradation 'fog' \(known: blur, pixelate, reference\)"):
        degrade(IMAGE, "fog", 1)


def test_generator_actor_seeds_the_noise_with_each_rows_seed():
    _, plan = build_plan({(0, 0): 2, (1, 1): 2}, prompt, {"dataset": "shapes", "backend": "procedural"})
    world = {"world": ShapesWorld().model_dump()}
    clean = GeneratorActor(ImageSpec("procedural", world, "png"))(plan)
    degraded = GeneratorActor(ImageSpec("procedural", world, "png", degradation={"kind": "reference", "severity": 3}))(plan)
    again = GeneratorActor(ImageSpec("procedural", world, "png", degradation={"kind": "reference", "severity": 3}))(plan)
    assert degraded.column("image").to_pylist() == again.column("image").to_pylist()
    for data, degraded_data, seed in zip(clean["image"].to_pylist(), degraded["image"].to_pylist(), degraded["seed"].to_pylist()):
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        expected = degrade(image, "reference", 3, seed=seed)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(degraded_data)).convert("RGB")), expected)
