"""The generation job: plan → Ray Data ``map_batches`` over generator actors → a synthetic pool.

Resumable and growable, on a local disk or an object store alike: the plan is stored first in
the pool's folder (``plan/plan.parquet``), rows are written there as whole Parquet parts, and a
run that finds the folder generates only the plan rows it does not hold yet. A finished pool
asked for more images per group is reopened (its ``table.json`` removed), its stored plan
extended — the rows it holds are a prefix of the larger plan, same ids, same seeds — and only the
new rows are made; a folder holding another pool is refused. When every planned row is there
exactly once, ``table.json`` is written: before that, nothing looks complete.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fake2real.lazy import lazy_module
from fake2real.seeding import stable_seed
from fake2real.data.images import encode_image
from fake2real.data.storage import TMP_PREFIX, Location, delete_file, get_bytes, is_file, list_names, put_bytes
from fake2real.data.table import (
    SCHEMA, SYNTHETIC, TableInfo, check_writable, count_groups, finalize, group_name, is_complete, part_names, read_info,
    pool_row_group, read_parts, read_table, reopen, serialize, write_part,
)
from fake2real.errors import DataError, redact
from fake2real.generate.spec import ActorPool, ImageSpec

# Imported at first use: planning a sweep (its dry run) reads pools without Ray.
ray = lazy_module("ray")

PLAN_FILE = "plan/plan.parquet"


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of a rejected row's next attempt: derived, so reruns regenerate the same image."""
    return stable_seed(seed, "retry", attempt) % (2**31)


def generate_filtered(backend, filters: list, max_attempts: int, y, b, prompts: list[str], seeds):
    """Images, the seed each was finally made with, and how often each row was rejected.

    A rejected row is made again with ``retry_seed(seed, attempt)``, up to ``max_attempts`` in all;
    a row rejected every time keeps its last image and counts ``max_attempts`` rejections.
    """

    def rejected(images, texts) -> list[int]:
        return [i for i, (image, text) in enumerate(zip(images, texts)) if any(f.reject(image, text) for f in filters)]

    y, b = np.asarray(y), np.asarray(b)
    original = np.array(seeds, dtype=np.int64)
    seeds = original.copy()
    images = list(backend.generate(y, b, prompts, seeds))
    rejections = np.zeros(len(seeds), dtype=np.int64)
    bad = rejected(images, prompts)
    for attempt in range(1, max_attempts):
        if not bad:
            break
        rejections[bad] += 1
        seeds[bad] = [retry_seed(int(original[i]), attempt) for i in bad]
        again = backend.generate(y[bad], b[bad], [prompts[i] for i in bad], seeds[bad])
        for i, image in zip(bad, again):
            images[i] = image
        bad = [bad[j] for j in rejected(again, [prompts[i] for i in bad])]
    rejections[bad] += 1
    return images, seeds, rejections


class GeneratorActor:
    """Loads its backend once; turns a batch of plan rows into contract rows."""

    def __init__(self, spec: ImageSpec):
        from fake2real.generate.backends import make_generator
        from fake2real.generate.filters import make_filters
        from fake2real.track.ray_metrics import GENERATED_IMAGES, GENERATION_IMAGES_PER_SECOND, actor_tag

        self.spec = spec
        self.backend = make_generator(spec.backend, {**spec.settings, **spec.inputs})
        self.filters = make_filters(spec.filters)
        # For the Grafana board: images made and the rate of this actor.
        self.images_total = GENERATED_IMAGES.create()
        self.rate = GENERATION_IMAGES_PER_SECOND.create()
        self.tags = {"backend": spec.backend, "actor": actor_tag()}

    def __call__(self, batch: pa.Table) -> pa.Table:
        started = time.perf_counter()
        prompts = batch.column("prompt").to_pylist()
        spec = self.spec
        images, seeds, rejections = generate_filtered(
            self.backend, self.filters, spec.max_attempts,
            batch.column("y").to_numpy(), batch.column("b").to_numpy(), prompts, batch.column("seed").to_numpy(),
        )
        if spec.degradation:
            from fake2real.generate.degrade import degrade

            # Noise is drawn from each image's own (final) seed: the same plan, the same images.
            kind, severity = spec.degradation["kind"], spec.degradation["severity"]
            images = [degrade(image, kind, severity, seed=int(seed)) for image, seed in zip(images, seeds)]
        n = batch.num_rows
        table = pa.table(
            {
                "id": batch.column("id"),
                "image": pa.array([encode_image(i, spec.image_format, spec.quality, spec.output_size) for i in images], pa.binary()),
                "y": batch.column("y"),
                "b": batch.column("b"),
                "g": pa.array([SYNTHETIC] * n, pa.int64()),
                "split": batch.column("split"),
                "prompt": batch.column("prompt"),
                "seed": pa.array(seeds, pa.int64()),
                "generator": pa.array([self.backend.generator] * n, pa.string()),
                "steps": pa.array([self.backend.steps] * n, pa.int64()),
                "guidance": pa.array([self.backend.guidance] * n, pa.float64()),
                "rejections": pa.array(rejections, pa.int64()),
            },
            schema=SCHEMA,
        )
        self.images_total.inc(n, tags=self.tags)
        self.rate.set(n / max(time.perf_counter() - started, 1e-9), tags=self.tags)
        return table


def _pool_of(plan: pa.Table) -> str:
    return plan["id"][0].as_py().split("-", 1)[0]  # ids are pool_row_id(pool, y, b, i)


def _target_plan(output: Location, plan: pa.Table) -> tuple[pa.Table, bool]:
    """(the plan the folder will hold, whether it must be stored): ``plan`` joined to the one
    stored there, which must be of the same pool. Writes nothing: a refusal leaves the folder as it was."""
    where = output / PLAN_FILE
    if not is_file(where):
        if part_names(output):
            raise DataError(f"{output} holds image parts but no generation plan; remove it to start over")
        return plan, True
    stored = pq.read_table(pa.BufferReader(get_bytes(where)))
    shared = pc.is_in(plan["id"], stored["id"])
    same = _pool_of(stored) == _pool_of(plan) and plan.filter(shared).sort_by("id").equals(
        stored.filter(pc.is_in(stored["id"], plan["id"])).sort_by("id")
    )
    if not same:
        raise DataError(f"{output} holds a partial run of a different plan; remove it to start over")
    added = plan.filter(pc.invert(shared))
    if not added.num_rows:
        return stored, False
    return pa.concat_tables([stored, added]).sort_by("id"), True


def _store_plan(output: Location, plan: pa.Table) -> pa.Table:
    """Store the joined plan in the folder (``_target_plan``) and return it."""
    target, changed = _target_plan(output, plan)
    if changed:
        put_bytes(output / PLAN_FILE, serialize(target))
    return target


def _holds(output: Location, plan: pa.Table) -> bool:
    held = read_table(output, columns=["id"])["id"]
    return pc.all(pc.is_in(plan["id"], held)).as_py()


def held_counts(output: str | os.PathLike) -> dict[tuple[int, int], int]:
    """Images the pool at ``output`` holds per requested group, finished or partly written."""
    output = Location(output)
    names = part_names(output)
    if not names:
        return {}
    counts: dict[tuple[int, int], int] = {}
    for row_id in read_parts(output, names, columns=["id"])["id"].to_pylist():
        group = pool_row_group(row_id)
        counts[group] = counts.get(group, 0) + 1
    return counts


def _group_line(plan: pa.Table, todo: pa.Table) -> str:
    def counts(rows: pa.Table) -> dict:
        return {group_name(r["y"], r["b"]): r["id_count"] for r in rows.group_by(["y", "b"]).aggregate([("id", "count")]).to_pylist()}

    planned, missing = counts(plan), counts(todo)
    return ", ".join(f"{g}: {n - missing.get(g, 0)} held + {missing.get(g, 0)} to make" for g, n in sorted(planned.items()))


def run_generation(plan: pa.Table, output: str | os.PathLike, info: TableInfo, spec: ImageSpec, actors: ActorPool = ActorPool()) -> TableInfo:
    """Generate every plan row missing from the pool at ``output`` (images as ``spec`` says, on
    ``actors``); a pool already holding them is returned as is."""
    output = Location(output)
    if is_complete(output):
        if _holds(output, plan):
            return read_info(output)
        _target_plan(output, plan)  # refused before the finished pool is touched
        reopen(output)  # a finished pool asked for more: unfinished until the new rows are there
    check_writable(output)
    for leftover in list_names(output, TMP_PREFIX):  # a killed local write's temporary file
        delete_file(output / leftover)
    plan = _store_plan(output, plan)

    names = part_names(output)
    done = read_parts(output, names, columns=["id"]) if names else None
    todo = plan if done is None else plan.filter(pc.invert(pc.is_in(plan["id"], done["id"])))
    total, made = plan.num_rows, plan.num_rows - todo.num_rows
    print(f"[generate] {redact(str(output))}: {made} images held, {todo.num_rows} to make ({_group_line(plan, todo)})", flush=True)
    if todo.num_rows:
        # Enough blocks that every actor stays busy; one block → one atomic part.
        # Blocks cut here, not by a repartition task: a pool holding every CPU would starve it.
        block_rows = max(1, min(actors.batch_size, -(-todo.num_rows // (actors.num_actors * 4))))
        blocks = [todo.slice(start, block_rows) for start in range(0, todo.num_rows, block_rows)]
        dataset = ray.data.from_arrow(blocks).map_batches(
            GeneratorActor,
            fn_constructor_kwargs={"spec": spec},
            batch_size=actors.batch_size,
            batch_format="pyarrow",
            num_cpus=actors.cpus_per_actor,
            num_gpus=actors.gpus_per_actor,
            compute=ray.data.ActorPoolStrategy(min_size=actors.min_actors, max_size=actors.num_actors),
        )
        started, next_report = time.perf_counter(), made + max(1, total // 10)
        for rows in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            write_part(output, rows)
            made += rows.num_rows
            if made >= next_report or made == total:
                rate = (made - (total - todo.num_rows)) / (time.perf_counter() - started)
                print(f"[generate] {made}/{total} images ({rate:.1f} images/s)", flush=True)
                next_report = made + max(1, total // 10)

    return _finish(output, plan, info, spec.max_attempts)


def _finish(output: Location, plan: pa.Table, info: TableInfo, max_attempts: int) -> TableInfo:
    """Check that the folder holds every plan row exactly once, then write ``table.json``."""
    total = plan.num_rows
    written = read_parts(output, part_names(output), columns=["id", "y", "b", "split", "rejections"])
    ids = written.column("id")
    if written.num_rows != total or pc.count_distinct(ids).as_py() != total or not pc.all(pc.is_in(ids, plan["id"])).as_py():
        raise DataError(f"{output}: {written.num_rows} rows written for a plan of {total}; remove the folder and run again")
    info.num_rows = total
    info.group_counts = count_groups(written)
    rejections = written.column("rejections").to_numpy()
    info.extra = {**info.extra, "rejections": int(rejections.sum()), "rows_rejected_on_every_attempt": int((rejections >= max_attempts).sum())}
    finalize(output, info)
    if info.extra["rows_rejected_on_every_attempt"]:
        print(f"[generate] warning: {info.extra['rows_rejected_on_every_attempt']} rows were rejected on all {max_attempts} attempts "
              "(column 'rejections')", flush=True)
    return info

