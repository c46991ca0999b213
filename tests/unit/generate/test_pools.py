"""Synthetic pools without Ray: a pool grows by top-up (the rows it holds are a prefix of the
larger plan), a grown pool equals one made at once, draws are views of the first k images of
each group, and a view reads like any table. Rows are made by calling the generator actor
directly, as Ray Data would; ``run_generation`` then finds nothing left to make."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest

from fake2real.config import build_config
from fake2real.data import storage
from fake2real.data.storage import Location
from fake2real.data.table import (
    TableInfo, is_complete, iter_batches, part_names, pool_row_group, pool_row_id, read_info, read_table, write_part, write_view,
)
from fake2real.data.datasets.shapes import prompt
from fake2real.errors import DataError
from fake2real.generate.job import PLAN_FILE, GeneratorActor, _store_plan, held_counts, run_generation
from fake2real.generate.plan import build_plan
from fake2real.generate.spec import ImageSpec
from fake2real.data.datasets.shapes import ShapesWorld
from fake2real.prepare.pools import prepare_synthetic
from fake2real.prepare.synthetic import synthetic_draw
from fake2real.train.mixtures import get_mixture
from fake2real.prepare.workspace import Workspace

SPEC = ImageSpec("procedural", {"world": ShapesWorld().model_dump()}, image_format="png")
IDENTITY = {"dataset": "shapes", "backend": "procedural"}
GROUPS = [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.fixture
def mem():
    storage.register_filesystem("mem", pafs._MockFileSystem())
    yield Location("mem://bucket")
    storage.register_filesystem("mem", None)


def info():
    return TableInfo("shapes", ["disc", "square"], ["warm", "cool"], "synthetic", extra={"pool_id": "p"})


def make_rows(folder, plan: pa.Table) -> None:
    """What the Ray Data job does for the rows of ``plan`` that ``folder`` lacks."""
    names = part_names(folder)
    held = set(read_table_ids(folder, names))
    todo = plan.filter(pc.invert(pc.is_in(plan["id"], pa.array(sorted(held), pa.string()))))
    actor = GeneratorActor(SPEC)
    for start in range(0, todo.num_rows, 3):
        write_part(folder, actor(todo.slice(start, 3)))


def read_table_ids(folder, names) -> list[str]:
    from fake2real.data.table import read_parts

    return read_parts(folder, names, columns=["id"])["id"].to_pylist() if names else []


def grow(folder, counts: dict) -> TableInfo:
    plan = build_plan(counts, prompt, IDENTITY)[1]
    if is_complete(folder):
        from fake2real.data.table import reopen

        reopen(folder)
    _store_plan(Location(folder), plan)
    make_rows(folder, plan)
    return run_generation(plan, folder, info(), SPEC)


def test_a_pool_grown_in_two_steps_equals_a_pool_made_at_once(mem):
    at_once, grown = mem / "at-once", mem / "grown"
    grow(at_once, {g: 5 for g in GROUPS})
    grow(grown, {g: 2 for g in GROUPS})
    first = read_table(grown)
    done = grow(grown, {g: 5 for g in GROUPS})
    assert done.num_rows == 20 and done.group_counts["train"] == {f"y{y}_b{b}": 5 for y, b in GROUPS}
    assert read_table(grown).equals(read_table(at_once))  # same ids, same seeds, same bytes
    again = read_table(grown)
    # The first two images of each group are the ones the small pool held, byte for byte.
    assert again.filter(pc.is_in(again["id"], first["id"])).equals(first)


def test_run_generation_on_a_finished_pool_that_holds_enough_changes_nothing(mem):
    folder = mem / "pool"
    grow(folder, {g: 3 for g in GROUPS})
    listed = read_info(folder)
    smaller = build_plan({g: 2 for g in GROUPS}, prompt, IDENTITY)[1]
    assert run_generation(smaller, folder, info(), SPEC).num_rows == 12 == listed.num_rows
    assert held_counts(folder) == {g: 3 for g in GROUPS}


def test_a_stored_plan_grows_only_within_its_pool(mem):
    folder = mem / "pool"
    small = build_plan({g: 2 for g in GROUPS}, prompt, IDENTITY)[1]
    assert _store_plan(folder, small).equals(small)
    larger = build_plan({(0, 0): 4, (1, 1): 1}, prompt, IDENTITY)[1]
    joined = _store_plan(folder, larger)
    assert joined.num_rows == 10  # 2 per group, plus images 2 and 3 of y0_b0
    assert storage.get_bytes(folder / PLAN_FILE) and _store_plan(folder, small).equals(joined)
    other = build_plan({g: 2 for g in GROUPS}, prompt, {**IDENTITY, "backend": "other"})[1]
    with pytest.raises(DataError, match=r"holds a partial run of a different plan; remove it to start over$"):
        _store_plan(folder, other)


def test_pool_row_ids_name_their_group():
    assert pool_row_group(pool_row_id("abc123", 1, 0, 42)) == (1, 0)


def test_a_view_reads_as_the_selected_rows_of_its_source(mem):
    pool = mem / "pool"
    grow(pool, {g: 4 for g in GROUPS})
    pid = read_table(pool)["id"][0].as_py().split("-")[0]
    chosen = [pool_row_id(pid, 0, 0, 0), pool_row_id(pid, 1, 1, 3)]
    view = write_view(mem / "view", pool, chosen, info())
    assert read_info(view).num_rows == 2 and read_info(view).group_counts == {"train": {"y0_b0": 1, "y1_b1": 1}}
    rows = read_table(view)
    assert rows["id"].to_pylist() == sorted(chosen)
    whole = read_table(pool)
    assert rows.equals(whole.filter(pc.is_in(whole["id"], pa.array(chosen))))
    streamed = pa.Table.from_batches(list(iter_batches(view, "train", ["id", "image"])))
    assert sorted(streamed["id"].to_pylist()) == sorted(chosen)
    with pytest.raises(DataError, match="holds 1 of the 2 rows a view of it needs"):
        write_view(mem / "view2", pool, [chosen[0], pool_row_id(pid, 0, 0, 99)], info())
    assert not is_complete(mem / "view2")


def shapes_draw(tmp_path, per_group: int):
    cfg = build_config(overrides={"output_dir": str(tmp_path), "generation": {"images_per_group": per_group, "test_images_per_group": 0},
                                  "dataset": {"shapes": {"image_size": 16}}})
    workspace = Workspace.create(cfg)
    return cfg, workspace, synthetic_draw(cfg, workspace, get_mixture("ffr"))


def finish_pool(cfg, pool, per_group: int, rows_per_part: int) -> None:
    """The pool holding ``per_group`` images of each group, made as Ray Data would, in parts of ``rows_per_part``."""
    spec = ImageSpec("procedural", {"world": cfg.dataset.shapes.model_dump()}, image_format="png")
    plan = pool.plan({g: per_group for g in GROUPS})
    _store_plan(pool.location, plan)
    actor = GeneratorActor(spec)
    for start in range(0, plan.num_rows, rows_per_part):
        write_part(pool.location, actor(plan.slice(start, rows_per_part)))
    run_generation(plan, pool.location, pool.info, spec)


def test_every_mixture_draws_the_first_images_of_each_group_of_one_pool(tmp_path):
    cfg, workspace, draw = shapes_draw(tmp_path, 3)
    finish_pool(cfg, draw.pool, 5, 20)  # a pool that already holds more than any draw

    table = prepare_synthetic(cfg, workspace, get_mixture("ffr"))  # no Ray: the pool holds enough
    ids = read_table(table)["id"].to_pylist()
    assert ids == sorted(pool_row_id(draw.pool.id, y, b, i) for y, b in GROUPS for i in range(3))
    assert read_info(table).extra["plan_id"] == draw.id and read_info(table).extra["pool_id"] == draw.pool.id
    assert str(prepare_synthetic(cfg, workspace, get_mixture("asb"))) == str(table)  # the same draw: the same view
    degraded = synthetic_draw(cfg, workspace, get_mixture("ffr_degraded"))
    assert degraded.pool.id != draw.pool.id and not is_complete(degraded.pool.location)


def test_run_generation_reopens_a_finished_pool_only_for_more_of_its_own_images(mem):
    folder = mem / "pool"
    grow(folder, {g: 2 for g in GROUPS})
    other = build_plan({g: 3 for g in GROUPS}, prompt, {**IDENTITY, "backend": "other"})[1]
    with pytest.raises(DataError, match="holds a partial run of a different plan"):
        run_generation(other, folder, info(), SPEC)
    assert is_complete(folder) and read_info(folder).num_rows == 8  # refused before it was touched

    larger = build_plan({g: 3 for g in GROUPS}, prompt, IDENTITY)[1]
    actor = GeneratorActor(SPEC)
    write_part(folder, actor(larger.filter(pc.invert(pc.is_in(larger["id"], read_table(folder)["id"])))))  # what Ray Data would make
    done = run_generation(larger, folder, info(), SPEC)  # reopens, extends the stored plan, finishes
    assert done.num_rows == 12 and is_complete(folder) and read_info(folder).num_rows == 12


def test_a_view_of_a_pool_made_again_is_rewritten_not_left_stale(tmp_path):
    import shutil

    cfg, workspace, draw = shapes_draw(tmp_path, 2)

    def make_pool(rows_per_part: int):
        finish_pool(cfg, draw.pool, 2, rows_per_part)

    make_pool(8)
    view = prepare_synthetic(cfg, workspace, get_mixture("ffr"))
    before = read_table(view)
    shutil.rmtree(str(draw.pool.location))
    make_pool(3)  # the same rows in other parts: the old view lists parts that are gone
    with pytest.raises(DataError, match="is missing"):
        read_table(view)
    assert str(prepare_synthetic(cfg, workspace, get_mixture("ffr"))) == str(view)
    assert read_table(view).equals(before)
