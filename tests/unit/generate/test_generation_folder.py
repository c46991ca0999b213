"""The generation job's folder on any filesystem (here pyarrow's in-memory one), without Ray:
the plan travels in the folder, another plan is refused, and a folder holding every planned row
is finished by writing ``table.json``."""

from __future__ import annotations

import pyarrow.fs as pafs
import pytest

from fake2real.data.datasets.shapes import ShapesWorld
from fake2real.data import storage
from fake2real.data.datasets.shapes import prompt
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, is_complete, part_names, read_table, serialize, write_part
from fake2real.errors import DataError
from fake2real.generate.job import PLAN_FILE, GeneratorActor, run_generation
from fake2real.generate.plan import build_plan
from fake2real.generate.spec import ImageSpec

COUNTS = {(0, 0): 2, (0, 1): 2, (1, 0): 2, (1, 1): 2}
SPEC = ImageSpec("procedural", {"world": ShapesWorld().model_dump()}, image_format="png")


@pytest.fixture
def folder():
    storage.register_filesystem("mem", pafs._MockFileSystem())
    yield Location("mem://bucket/data/synthetic")
    storage.register_filesystem("mem", None)


def plan(identity="a"):
    return build_plan(COUNTS, prompt, {"dataset": "shapes", "backend": "procedural", "x": identity})[1]


def info():
    return TableInfo("shapes", ["disc", "square"], ["warm", "cool"], "synthetic")


def test_a_folder_holding_every_planned_row_is_finished(folder):
    rows = plan()
    actor = GeneratorActor(SPEC)
    for start in range(0, rows.num_rows, 3):
        write_part(folder, actor(rows.slice(start, 3)))
    with pytest.raises(DataError, match=f"{folder} holds image parts but no generation plan"):
        run_generation(rows, folder, info(), SPEC)

    # With the plan stored (as the job does before it writes a part), no row is left to make: no Ray.
    storage.put_bytes(folder / PLAN_FILE, serialize(rows))
    done = run_generation(rows, folder, info(), SPEC)
    assert is_complete(folder) and done.num_rows == rows.num_rows
    assert done.group_counts["train"] == {"y0_b0": 2, "y0_b1": 2, "y1_b0": 2, "y1_b1": 2}
    assert read_table(folder)["id"].to_pylist() == sorted(rows["id"].to_pylist())
    assert storage.is_file(folder / PLAN_FILE)  # the plan travels with the table
    assert run_generation(rows, folder, info(), SPEC).num_rows == rows.num_rows  # finished: returned as is


def test_a_folder_of_another_plan_is_refused_in_one_line(folder):
    storage.put_bytes(folder / PLAN_FILE, serialize(plan("a")))
    with pytest.raises(DataError, match=f"^{folder} holds a partial run of a different plan; remove it to start over$"):
        run_generation(plan("b"), folder, info(), SPEC)
    assert not is_complete(folder) and part_names(folder) == []
