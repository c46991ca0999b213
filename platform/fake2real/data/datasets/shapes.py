"""``shapes``: the built-in procedural benchmark (docs/design.md §1). No downloads.

A world of 2 classes × 2 bias values that shows the FFR mechanism — it is a demonstration, not
evidence for the paper:

- Y (class) is the shape drawn, a filled disc (0) or a filled square (1): small, faint and noisy
  as ``y_difficulty`` grows, so it is *harder* to learn than B.
- B (bias) is the background colour, warm (0) or cool (1): trivially learnable.
- G (source): the *real* renderer draws the scene; the *synthetic* renderer draws the same
  scene plus a periodic checkerboard of amplitude ``artifact_strength`` — a learnable generator
  artifact — and, for a share ``semantic_gap`` of images, renders Y differently (hollow outlines).

Class y's majority bias is b = y (``MAJORITY_BIAS``; ``dataset.majority_bias`` overrides it for
subsampling, through the same rule as the real datasets). Every image is a pure function of
(y, b, seed), so renders are bit-identical across runs, batchings and machines.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from fake2real.data.datasets.base import Dataset, DatasetSettings, Section
from fake2real.data.images import encode_image
from fake2real.data.groups import apply_bias_ratio, check_splits
from fake2real.data.table import REAL, TableInfo, count_groups, group_name, write_table
from fake2real.seeding import stable_seed

NAME = "shapes"
CLASS_NAMES = ["disc", "square"]
BIAS_NAMES = ["warm", "cool"]
MAJORITY_BIAS = {0: 0, 1: 1}
PROMPT_TEMPLATE = "a {class_name} on a {bias_name} background"
NO_BIAS_TEMPLATE = "a {class_name}"
SPLITS = ("train", "val", "test")

_BACKGROUNDS = np.array([[0.78, 0.45, 0.30], [0.30, 0.48, 0.78]])  # warm, cool (RGB, 0..1)


class ShapesWorld(DatasetSettings):
    """``dataset.shapes``: the knobs of this world."""

    image_size: int = Field(32, ge=16, le=256)
    # Pool of images rendered per (y, b) group before the bias-ratio subsampling.
    train_per_group: int = Field(1000, ge=1)
    val_per_group: int = Field(100, ge=1)
    test_per_group: int = Field(200, ge=1)
    # How hard Y is to read: 0 = large high-contrast shapes, 1 = small faint noisy ones.
    y_difficulty: float = Field(0.6, ge=0.0, le=1.0)
    # Amplitude (in 0..1 intensity) of the synthetic renderer's periodic artifact (the G signal).
    artifact_strength: float = Field(0.08, ge=0.0, le=1.0)
    # Share of synthetic images whose class is drawn with the *other* shape family's geometry.
    semantic_gap: float = Field(0.0, ge=0.0, le=1.0)
    # When a prompt names no background (the ffr_unbalanced ablation), the share of a class's
    # synthetic images drawn on its majority background: the renderer's own prior, as a
    # text-to-image model has one.
    unprompted_bias_ratio: float = Field(0.9, ge=0.0, le=1.0)

    # Knobs of the synthetic renderer alone: the real images do not depend on them.
    SYNTHETIC_ONLY: ClassVar[tuple[str, ...]] = ("artifact_strength", "semantic_gap", "unprompted_bias_ratio")


def prompt(y: int, b: int, seed: int | None = None, bias_words: bool = True) -> str:
    """The group's prompt (recorded as provenance; the procedural renderer reads y and b)."""
    if not bias_words:
        return NO_BIAS_TEMPLATE.format(class_name=CLASS_NAMES[y])
    return PROMPT_TEMPLATE.format(class_name=CLASS_NAMES[y], bias_name=BIAS_NAMES[b])


def unprompted_bias(y: int, b: int, seed: int, world: ShapesWorld) -> int:
    """The background the renderer picks when the prompt names none (``b``, the group asked for,
    unread): its prior, not balanced."""
    majority = MAJORITY_BIAS[y]
    draw = np.random.default_rng(stable_seed("unprompted", seed)).uniform()
    return majority if draw < world.unprompted_bias_ratio else 1 - majority


def render(y: int, b: int, seed: int, world: ShapesWorld, synthetic: bool) -> np.ndarray:
    """One image as uint8 (H, W, 3)."""
    rng = np.random.default_rng(seed)
    size, d = world.image_size, world.y_difficulty
    background = _BACKGROUNDS[b] + rng.uniform(-0.06, 0.06, size=3)
    image = np.broadcast_to(background, (size, size, 3)).copy()

    half = size * (0.32 - 0.18 * d) * rng.uniform(0.85, 1.15)  # half-width of the shape
    cy, cx = rng.uniform(half + 1, size - half - 1, size=2)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    # Drawn for every image, so a real and a synthetic render of the same seed are the same scene.
    hollow = (rng.uniform() < world.semantic_gap) and synthetic
    if y == 0:
        dist = np.hypot(rows - cy, cols - cx)
        mask = dist <= half
        inner = dist <= half - max(1.5, half * 0.35)
    else:
        dist = np.maximum(np.abs(rows - cy), np.abs(cols - cx))
        mask = dist <= half * 0.886  # same area as the disc: area is no cue
        inner = dist <= half * 0.886 - max(1.5, half * 0.35)
    if hollow:
        mask = mask & ~inner
    contrast = (0.55 - 0.4 * d) * rng.choice([-1.0, 1.0])
    image[mask] += contrast
    image += rng.normal(0.0, 0.02 + 0.12 * d, size=image.shape)
    if synthetic and world.artifact_strength > 0:
        checker = ((rows.astype(int) + cols.astype(int)) % 2) * 2.0 - 1.0
        image += world.artifact_strength * checker[..., None]
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _pool_rows(config: Section) -> pa.Table:
    """Every split's balanced pool, before subsampling: ids, groups and seeds, no images yet."""
    world = config.shapes
    per_group = {"train": world.train_per_group, "val": world.val_per_group, "test": world.test_per_group}
    columns: dict[str, list] = {"id": [], "y": [], "b": [], "split": [], "seed": []}
    for split in SPLITS:
        for y in range(len(CLASS_NAMES)):
            for b in range(len(BIAS_NAMES)):
                for i in range(per_group[split]):
                    image_id = f"{NAME}-{split}-{group_name(y, b)}-{i:06d}"
                    columns["id"].append(image_id)
                    columns["y"].append(y)
                    columns["b"].append(b)
                    columns["split"].append(split)
                    columns["seed"].append(stable_seed(NAME, config.split_seed, image_id))
    return pa.table(columns)


class Shapes(Dataset):
    name = NAME
    Settings = ShapesWorld
    section_in_every_key = True  # dataset.shapes: in every job's key from the first
    reads = ()  # rendered here: no files, stored at its own size
    MAJORITY_BIAS = MAJORITY_BIAS
    photographs = False  # a small CNN from random weights is the benchmark's model

    @classmethod
    def check(cls, config: Section) -> None:
        if config.bias_ratio is None:  # it renders balanced pools: the ratio makes them biased
            raise ValueError("dataset.bias_ratio is required for the built-in shapes world")

    @classmethod
    def names(cls, config: Section) -> tuple[list[str], list[str]]:
        return CLASS_NAMES, BIAS_NAMES

    @classmethod
    def stored_image_size(cls, config: Section) -> int:
        return config.shapes.image_size

    @classmethod
    def prompts(cls, config: Section):
        return prompt

    @classmethod
    def unprompted_bias(cls, config: Section):
        return partial(unprompted_bias, world=config.shapes)

    @classmethod
    def synthetic_world(cls, config: Section) -> dict:
        return config.shapes.model_dump()

    @classmethod
    def listing(cls, config: Section) -> pa.Table:
        """The rows the real table keeps after the bias-ratio rule (no images: what a dry run counts)."""
        from fake2real.data.ingest import majority_map

        majority = majority_map(config, cls)  # a config error, before any rendering
        pool = _pool_rows(config)
        y, b, ids = (pool.column(c).to_numpy(zero_copy_only=False) for c in ("y", "b", "id"))
        split = pool.column("split").to_pylist()
        keep = apply_bias_ratio(y, b, ids, split, majority, config.bias_ratio, config.val_floor, config.split_seed)
        table = pool.filter(pa.array(keep))
        expected = [group_name(yy, bb) for yy in range(len(CLASS_NAMES)) for bb in range(len(BIAS_NAMES))]
        check_splits(count_groups(table), expected, NAME, config.bias_ratio)
        return table

    @classmethod
    def build_real_table(cls, config: Section, path) -> TableInfo:
        """Render the kept rows of the real pools and write the table at ``path``."""
        table = cls.listing(config)
        world = config.shapes
        # PNG, not JPEG: lossless, so the images are exactly what the renderer drew.
        images = [
            encode_image(render(y, b, seed, world, synthetic=False), "png")
            for y, b, seed in zip(table["y"].to_pylist(), table["b"].to_pylist(), table["seed"].to_pylist())
        ]
        n = table.num_rows
        table = table.append_column("image", pa.array(images, pa.binary())).append_column("g", pa.array([REAL] * n, pa.int64()))
        info = TableInfo(NAME, CLASS_NAMES, BIAS_NAMES, source="real", extra={"world": config.shapes.model_dump()})
        write_table(path, table, info)
        return info
