"""Making and drawing synthetic pools: generation (or import) to a size, top-up, and the view
each experiment trains on. What a pool is and how many images a draw takes: ``synthetic.py``.
"""

from __future__ import annotations

from dataclasses import replace


from fake2real.lazy import lazy_module
from fake2real.config import ExperimentConfig
from fake2real.data.sources import changed_source
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, group_name, is_complete, is_current_view, read_info, write_view
from fake2real.errors import ConfigError, DataError, redact
from fake2real.generate.backends import backend_of
from fake2real.generate.job import held_counts, run_generation
from fake2real.generate.plan import describe, drawn_ids
from fake2real.generate.spec import ActorPool
from fake2real.prepare.generators import ensure_generator, generator_job
from fake2real.runtime import init_ray, require_resources
from fake2real.prepare.synthetic import Draw, Group, Pool, draw_location, synthetic_draw
from fake2real.train.mixtures import Mixture
from fake2real.prepare.workspace import Workspace

# Imported at first use: planning a sweep (its dry run) reads pools without Ray.
ray = lazy_module("ray")


def _actors(config: ExperimentConfig) -> ActorPool:
    """The generation actors: by default one per GPU of the cluster (for a backend that uses one)."""
    gen = config.generation
    cluster_gpus = ray.cluster_resources().get("GPU", 0)
    gpus = gen.gpus_per_actor if gen.gpus_per_actor is not None else (1.0 if backend_of(config).uses_gpu and cluster_gpus else 0.0)
    most = gen.num_actors if gen.num_actors is not None else (max(gen.min_actors, int(cluster_gpus // gpus)) if gpus else gen.min_actors)
    return ActorPool(gen.batch_size, min(gen.min_actors, most), most, gen.cpus_per_actor, gpus)


def pool_counts(config: ExperimentConfig, pool: Pool) -> dict[Group, int]:
    """Images the pool holds per (requested) group, finished or partly written; for an imported
    pool not yet imported, the images its folder lists (what it will hold)."""
    if backend_of(config).imports and not is_complete(pool.location):
        return _group_counts(_imported_rows(config, pool))
    return held_counts(pool.location)


def _group_counts(rows) -> dict[Group, int]:
    counts: dict[Group, int] = {}
    for y, b in zip(rows["y"].to_pylist(), rows["b"].to_pylist()):
        counts[(y, b)] = counts.get((y, b), 0) + 1
    return counts


def _imported_rows(config: ExperimentConfig, pool: Pool):
    """The source's listed rows of the pool's split; refused when it is not the one the pool id was made from."""
    info = pool.info
    return backend_of(config).listed(config, info.class_names, info.bias_names, split=pool.split, identity=pool.identity)


def check_shortfall(config: ExperimentConfig, pool: Pool, counts: dict[Group, int], held: dict[Group, int]) -> None:
    """An imported pool cannot grow: a draw larger than what it holds is refused, naming the group."""
    backend = backend_of(config)
    for group, n in sorted(counts.items()):
        if held.get(group, 0) < n:
            y, b = group
            hint = " (mark held-out rows split=test in the metadata, or set generation.test_images_per_group=0)" if pool.split == "test" else ""
            raise ConfigError(
                f"config: generation.{backend.name}: {backend.source(config)} holds {held.get(group, 0)} {pool.split} images of group "
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


def _check_unchanged(config: ExperimentConfig, pool: Pool) -> None:
    """A finished imported pool still holds what its source holds: an image edited since (its
    metadata untouched, so the pool's id is the same) is refused, not reused stale."""
    backend = backend_of(config)
    if not backend.imports or not is_complete(pool.location):
        return
    changed = changed_source(pool.location, backend.source(config))
    if changed is not None:
        path, gone = changed
        what = "was removed since the pool was imported" if gone else "changed since the pool was imported (size or modification time)"
        raise DataError(f"generation.{backend.name}: {backend.source(config)}: image {path} {what}; remove {pool.location} or restore the image")


def ensure_pool(config: ExperimentConfig, pool: Pool, counts: dict[Group, int]) -> None:
    """Make ``pool`` hold at least ``counts[g]`` images of each group: generated (or topped up),
    or, for an imported pool, imported once and checked for a shortfall."""
    _check_folder(pool)
    if backend_of(config).imports:  # imported once, checked before any Ray work
        _import_pool(config, pool, counts)
        return
    init_ray()
    actors = _actors(config)
    if actors.gpus_per_actor:  # Ray Data would wait forever for an actor no node can hold
        require_resources({"CPU": actors.cpus_per_actor, "GPU": actors.gpus_per_actor}, 1, "generation (generation.gpus_per_actor)",
                          config.train.resource_wait_s)
    plan = pool.plan(counts)
    spec = pool.spec
    if generator_job(config) is not None:  # a generator the platform trains first (once; then found by its key)
        trained = ensure_generator(config, Workspace.create(config))
        spec = replace(spec, inputs={"model_uri": trained["pipeline_uri"]})
    print(f"[generate] pool {pool.id} at {redact(str(pool.location))} ({actors.num_actors} actor(s), {actors.gpus_per_actor} GPU each)\n{describe(plan)}",
          flush=True)
    run_generation(plan, pool.location, pool.info, spec, actors)


def _import_pool(config: ExperimentConfig, pool: Pool, counts: dict[Group, int]) -> None:
    if is_complete(pool.location):  # its id holds the metadata's digest: no need to list it again
        _check_unchanged(config, pool)
        check_shortfall(config, pool, counts, held_counts(pool.location))
        return
    rows = _imported_rows(config, pool)
    check_shortfall(config, pool, counts, _group_counts(rows))
    init_ray()
    backend_of(config).build(config, pool, rows)


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
    _check_unchanged(config, draw.pool)
    held = held_counts(draw.pool.location) if is_complete(draw.pool.location) else {}
    if any(held.get(g, 0) < n for g, n in draw.counts.items()):
        ensure_pool(config, draw.pool, draw.counts)
    return draw_table(draw, workspace)
