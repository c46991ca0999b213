"""Making and drawing synthetic pools: generation (or import) to a size, top-up, and the view
each experiment trains on. What a pool is and how many images a draw takes: ``synthetic.py``.
"""

from __future__ import annotations

import ray

from fake2real.config import ExperimentConfig
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, check_writable, group_name, is_complete, is_current_view, read_info, write_view
from fake2real.errors import ConfigError
from fake2real.generate.job import held_counts, run_generation
from fake2real.generate.plan import describe, drawn_ids
from fake2real.runtime import init_ray, require_resources
from fake2real.synthetic import (
    Draw, Group, Pool, backend_kwargs, stored_format, check_generation, draw_location, synthetic_draw,
)
from fake2real.train.mixtures import Mixture
from fake2real.workspace import Workspace, planned_real_info


def _actors(config: ExperimentConfig) -> tuple[int, float]:
    """(max actors, GPUs per actor): by default one actor per GPU of the cluster."""
    gen = config.generation
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    gpus = gen.gpus_per_actor if gen.gpus_per_actor is not None else (1.0 if gen.backend == "diffusers" and cluster_gpus else 0.0)
    if gen.num_actors is not None:
        return gen.num_actors, gpus
    return (max(gen.min_actors, int(cluster_gpus // gpus)) if gpus else gen.min_actors), gpus


def pool_counts(config: ExperimentConfig, pool: Pool) -> dict[Group, int]:
    """Images the pool holds per (requested) group, finished or partly written; for an imported
    pool not yet imported, the images its folder lists (what it will hold)."""
    if pool.prompt is None and not is_complete(pool.location):
        return _group_counts(_imported_rows(config, pool))
    return held_counts(pool.location)


def _group_counts(rows) -> dict[Group, int]:
    counts: dict[Group, int] = {}
    for y, b in zip(rows["y"].to_pylist(), rows["b"].to_pylist()):
        counts[(y, b)] = counts.get((y, b), 0) + 1
    return counts


def _imported_rows(config: ExperimentConfig, pool: Pool):
    """The folder's listed rows of the pool's split; refused when its metadata is not the one the pool id was made from."""
    from fake2real.data.imported import DIGEST_KEY, list_imported

    folder = config.generation.folder
    rows = list_imported(folder.root, folder.metadata, pool.info.class_names, pool.info.bias_names, split=pool.split)
    if rows.schema.metadata[DIGEST_KEY].decode() != pool.identity["metadata"]:
        raise ConfigError(f"config: generation.folder: the metadata under {folder.root} changed while this job ran; run it again")
    return rows


def check_shortfall(config: ExperimentConfig, pool: Pool, counts: dict[Group, int], held: dict[Group, int]) -> None:
    """An imported pool cannot grow: a draw larger than what it holds is refused, naming the group."""
    for group, n in sorted(counts.items()):
        if held.get(group, 0) < n:
            y, b = group
            hint = " (mark held-out rows split=test in the metadata, or set generation.test_images_per_group=0)" if pool.split == "test" else ""
            raise ConfigError(
                f"config: generation.folder: {config.generation.folder.root} holds {held.get(group, 0)} {pool.split} images of group "
                f"{group_name(*group)} ({pool.info.class_names[y]}, {pool.info.bias_names[b]}); {n} are needed (short by {n - held.get(group, 0)}){hint}"
            )


def _check_folder(pool: Pool) -> None:
    """A finished pool at ``pool.location`` must be this pool (``generation.output`` is one folder)."""
    if is_complete(pool.location):
        stored = read_info(pool.location).extra.get("pool_id")
        if stored != pool.id:
            raise ConfigError(
                f"config: generation.output: {pool.location} holds the synthetic pool {stored}, not the pool {pool.id} "
                "this run draws from (images made another way); choose another generation.output (or none: one folder per pool)"
            )


def ensure_pool(config: ExperimentConfig, pool: Pool, counts: dict[Group, int]) -> None:
    """Make ``pool`` hold at least ``counts[g]`` images of each group: generated (or topped up),
    or, for an imported pool, imported once and checked for a shortfall."""
    gen = config.generation
    _check_folder(pool)
    if pool.prompt is None:  # generation.backend: folder: imported once, checked before any Ray work
        if is_complete(pool.location):  # its id holds the metadata's digest: no need to list the folder again
            check_shortfall(config, pool, counts, held_counts(pool.location))
            return
        rows = _imported_rows(config, pool)
        check_shortfall(config, pool, counts, _group_counts(rows))
        from fake2real.data.imported import build_imported_table

        init_ray()
        build_imported_table(rows, pool.id, pool.identity["size"], pool.location, pool.info, quality=gen.jpeg_quality)
        return
    init_ray()
    max_actors, gpus = _actors(config)
    if gpus:  # Ray Data would wait forever for an actor no node can hold
        require_resources({"CPU": config.generation.cpus_per_actor, "GPU": gpus}, "generation (generation.gpus_per_actor)",
                          config.train.resource_wait_s)
    plan = pool.plan(counts)
    print(f"[generate] pool {pool.id} at {pool.location} ({max_actors} actor(s), {gpus} GPU each)\n{describe(plan)}", flush=True)
    run_generation(
        plan, pool.location, pool.info, gen.backend, backend_kwargs(config),
        image_format=stored_format(config), quality=gen.jpeg_quality, output_size=gen.output_size,
        filters=gen.filters, max_attempts=gen.max_attempts, degradation=pool.info.extra["degradation"], batch_size=gen.batch_size,
        min_actors=min(gen.min_actors, max_actors), num_actors=max_actors,
        cpus_per_actor=gen.cpus_per_actor, gpus_per_actor=gpus,
    )


def draw_table(draw: Draw, workspace: Workspace) -> Location:
    """The view of ``draw``'s rows in its (finished) pool: written once, then found by its id."""
    pool = draw.pool
    path = draw_location(draw, workspace)
    if not is_current_view(path, pool.location):
        info = TableInfo(pool.info.dataset, pool.info.class_names, pool.info.bias_names, "synthetic",
                         extra={**pool.info.extra, "plan_id": draw.id, "pool": str(pool.location)})
        write_view(path, pool.location, drawn_ids(pool.id, draw.counts), info)
    return path


def prepare_synthetic(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False) -> Location:
    """The synthetic table an experiment trains on (or tests on): its draw, its pool grown first if short."""
    draw = synthetic_draw(config, workspace, mixture, test)
    _check_folder(draw.pool)
    held = held_counts(draw.pool.location) if is_complete(draw.pool.location) else {}
    if any(held.get(g, 0) < n for g, n in draw.counts.items()):
        ensure_pool(config, draw.pool, draw.counts)
    return draw_table(draw, workspace)


def run_generation_job(config: ExperimentConfig, dry_run: bool = False) -> str:
    """``jobs/generate.py``: the plan (dry run, nothing written) or the pool, generated or grown to what the mixture draws."""
    check_generation(config)
    if dry_run:  # nothing written: the real table's counts come from its listing
        draw = synthetic_draw(config, Workspace(Location(config.output_dir)), real_info=planned_real_info)
        if draw.pool.prompt is None:
            return f"pool {draw.pool.id}: imported from {config.generation.folder.root}; draws {sum(draw.counts.values())} images"
        plan = draw.pool.plan(draw.counts)
        return f"pool {draw.pool.id}: {plan.num_rows} images\n{describe(plan)}"
    workspace = Workspace.create(config)
    if config.generation.output:
        check_writable(Location(config.generation.output).parent)
    draw = synthetic_draw(config, workspace)
    ensure_pool(config, draw.pool, draw.counts)
    info = read_info(draw.pool.location)
    lines = [f"synthetic pool: {draw.pool.location} ({info.num_rows} rows, {info.extra.get('rejections', 0)} rejections)"]
    return "\n".join(lines + [f"  {k}: {v}" for k, v in info.group_counts["train"].items()])
