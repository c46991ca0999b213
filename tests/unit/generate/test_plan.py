"""Prompt plans and the generator actor (called directly on an Arrow table, no Ray)."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from PIL import Image

from fake2real.data.datasets.shapes import ShapesWorld
from fake2real.data.datasets.shapes import prompt
from fake2real.data.table import SCHEMA, SYNTHETIC
from fake2real.errors import ConfigError
from fake2real.generate.backends import make_generator
from fake2real.generate.job import GeneratorActor
from fake2real.generate.procedural import ProceduralBackend
from fake2real.generate.spec import ImageSpec
from fake2real.generate.plan import PLAN_SCHEMA, build_plan, describe

COUNTS = {(1, 1): 3, (0, 0): 3, (0, 1): 2, (1, 0): 2}
IDENTITY = {"dataset": "shapes", "backend": "procedural"}


def _groups(plan: pa.Table) -> dict:
    rows = plan.group_by(["y", "b"]).aggregate([("id", "count")]).to_pylist()
    return {(r["y"], r["b"]): r["id_count"] for r in rows}


def test_build_plan_counts_and_columns():
    pid, plan = build_plan(COUNTS, prompt, IDENTITY)
    assert plan.schema == PLAN_SCHEMA
    assert plan.num_rows == 10
    assert _groups(plan) == {(0, 0): 3, (0, 1): 2, (1, 0): 2, (1, 1): 3}
    assert set(plan.column("split").to_pylist()) == {"train"}
    by_group = {(r["y"], r["b"]): r["prompt"] for r in plan.to_pylist()}
    assert by_group[(0, 1)] == "a disc on a cool background"
    assert by_group[(1, 0)] == "a square on a warm background"
    assert len(pid) == 16
    assert all(i.startswith(pid + "-") for i in plan.column("id").to_pylist())


def test_build_plan_ids_unique_and_seeds_in_range():
    _, plan = build_plan(COUNTS, prompt, IDENTITY)
    ids = plan.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    seeds = plan.column("seed").to_pylist()
    assert all(0 <= s < 2**31 for s in seeds)
    assert len(set(seeds)) == len(seeds)


def test_build_plan_is_stable():
    pid1, plan1 = build_plan(COUNTS, prompt, IDENTITY)
    # Same content, dict built in another order.
    pid2, plan2 = build_plan(dict(reversed(list(COUNTS.items()))), prompt, dict(reversed(list(IDENTITY.items()))))
    assert pid1 == pid2
    assert plan1.equals(plan2)


def test_pool_id_depends_on_identity_not_counts():
    pid, plan = build_plan(COUNTS, prompt, IDENTITY)
    pid_other, plan_other = build_plan(COUNTS, prompt, {**IDENTITY, "backend": "sd"})
    assert pid_other != pid
    assert plan_other.column("seed").to_pylist() != plan.column("seed").to_pylist()
    assert build_plan(COUNTS, prompt, IDENTITY, split="test")[0] != pid  # the held-out test pool is another pool
    # More images of a group: the same pool, and the smaller plan is a prefix of each group.
    pid_more, more = build_plan({**COUNTS, (0, 0): 5}, prompt, IDENTITY)
    assert pid_more == pid
    assert more.num_rows == plan.num_rows + 2
    assert more.filter(pc.is_in(more["id"], plan["id"])).equals(plan)
    added = [r["id"] for r in more.to_pylist() if r["id"] not in set(plan["id"].to_pylist())]
    assert added == [f"{pid}-y0_b0-000003", f"{pid}-y0_b0-000004"]


@pytest.mark.parametrize("n", [0, -3])
def test_build_plan_rejects_non_positive_counts(n):
    with pytest.raises(ConfigError, match=rf"positive, got {n} for group y1_b0"):
        build_plan({(0, 0): 2, (1, 0): n}, prompt, IDENTITY)


def test_build_plan_rejects_empty_counts():
    with pytest.raises(ConfigError, match="no groups"):
        build_plan({}, prompt, IDENTITY)


def test_describe():
    _, plan = build_plan(COUNTS, prompt, IDENTITY)
    assert describe(plan).splitlines() == [
        "y0_b0: 3 images, 1 distinct prompt, e.g. 'a disc on a warm background'",
        "y0_b1: 2 images, 1 distinct prompt, e.g. 'a disc on a cool background'",
        "y1_b0: 2 images, 1 distinct prompt, e.g. 'a square on a warm background'",
        "y1_b1: 3 images, 1 distinct prompt, e.g. 'a square on a cool background'",
    ]


def test_describe_counts_distinct_prompts_per_group():
    prompts = {0: ["a", "b", "a", "c", "d"], 1: ["e", "e"]}
    _, plan = build_plan({(0, 0): 5, (1, 1): 2}, lambda y, b, seed: prompts[y].pop(0), IDENTITY)
    assert describe(plan).splitlines() == [
        "y0_b0: 5 images, 4 distinct prompts, e.g. 'a', 'b', 'c'",
        "y1_b1: 2 images, 1 distinct prompt, e.g. 'e'",
    ]


def test_make_generator():
    backend = make_generator("procedural", {"world": ShapesWorld(artifact_strength=0.1).model_dump()})
    assert isinstance(backend, ProceduralBackend)
    assert backend.generator == "procedural:shapes/v1 artifact_strength=0.1 semantic_gap=0.0"
    with pytest.raises(ConfigError, match=r"^config: generation.backend: unknown backend 'nope' \(known: diffusers, folder, group_diffusion, procedural\)$"):
        make_generator("nope", {})
    with pytest.raises(ConfigError, match=r"^config: generation.backend: 'folder' imports images; it makes none$"):
        make_generator("folder", {})


def test_generator_actor_on_plan_slice():
    _, plan = build_plan(COUNTS, prompt, IDENTITY)
    batch = plan.slice(2, 4)  # rows 2..5: y0_b0 #2, y0_b1 #0, #1, y1_b0 #0
    actor = GeneratorActor(ImageSpec("procedural", {"world": ShapesWorld().model_dump()}, "png"))
    out = actor(batch)
    assert out.schema == SCHEMA
    assert out.num_rows == 4
    assert out.column("g").to_pylist() == [SYNTHETIC] * 4 == [1, 1, 1, 1]
    for column in ("id", "y", "b", "split", "prompt", "seed"):
        assert out.column(column).to_pylist() == batch.column(column).to_pylist()
    assert out.column("y").to_pylist() == [0, 0, 0, 1]
    assert out.column("b").to_pylist() == [0, 1, 1, 0]
    assert set(out.column("generator").to_pylist()) == {
        "procedural:shapes/v1 artifact_strength=0.08 semantic_gap=0.0"
    }
    assert out.column("steps").null_count == 4 and out.column("guidance").null_count == 4

    images = out.column("image").to_pylist()
    for data in images:
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == (32, 32) and image.mode == "RGB"
        # The G artifact: +/-0.08 checkerboard, a parity gap of about 2 * 0.08 * 255 = 40.8.
        pixels = np.asarray(image, dtype=np.float64).mean(axis=2)
        rows, cols = np.indices(pixels.shape)
        odd = (rows + cols) % 2 == 1
        assert pixels[odd].mean() - pixels[~odd].mean() > 25

    again = GeneratorActor(ImageSpec("procedural", {"world": ShapesWorld().model_dump()}, "png"))(batch)
    assert again.column("image").to_pylist() == images


def test_generator_actor_jpeg():
    _, plan = build_plan({(0, 0): 1}, prompt, IDENTITY)
    out = GeneratorActor(ImageSpec("procedural", {"world": ShapesWorld().model_dump()}, "jpeg"))(plan)
    assert out.schema == SCHEMA
    assert Image.open(io.BytesIO(out.column("image")[0].as_py())).format == "JPEG"
