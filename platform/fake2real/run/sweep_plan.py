"""What a sweep will do, before it does it: its cells, the pools it sizes once, its dry run.

``jobs/sweep.py --dry-run`` prints, without starting Ray:

- the real tables (to ingest, or already there);
- each synthetic pool with the images it holds and must add per group: one pool per way of
  making images, sized to the largest draw of any cell (``prepare_pools`` generates exactly that
  before the first cell trains);
- the distinct stages to train after sharing: each experiment's stages identified as
  ``run_experiment`` identifies them (``experiment.stage_spec``), a stage that starts from
  another by that stage's identity instead of its checkpoint's path; with a search, each trial
  trains its cell's last stage once more (``num_samples`` per cell and per stage-1 search);
- an estimated cost in device-hours from per-image rates (``sweep.cost``, else ``cost.MEASURED``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from fake2real.config import ExperimentConfig, axis_points, merge, nested, point_label
from fake2real.prepare.cost import MEASURED_GENERATOR_TRAINING, Rates, rates, stage_start_s
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, group_name, is_complete
from fake2real.errors import ConfigError
from fake2real.run.experiment import stage_spec
from fake2real.generate.generator_training import finished_generator
from fake2real.prepare.generators import generator_job
from fake2real.run.search_plan import distinct_searches, searches_stage1, stage1_cell
from fake2real.prepare.pool_sources import Group, Pool
from fake2real.prepare.pools import ensure_pool
from fake2real.prepare.synthetic import Draw, draw_location, synthetic_draw
from fake2real.train.mixtures import get_mixture
from fake2real.train.stage_record import finished_stage
from fake2real.prepare.workspace import Workspace, planned_real_info, real_location



def _pairs(config: ExperimentConfig) -> list[tuple[str, str]]:
    """The sweep's (mixture, method) pairs: mixtures × methods, then the ablations' new ones."""
    sweep = config.sweep
    pairs = list(itertools.product(sweep.mixtures, sweep.methods))
    return pairs + [p for p in itertools.product(sweep.ablation_mixtures, sweep.ablation_methods) if p not in pairs]


def sweep_size(config: ExperimentConfig) -> tuple[int, str]:
    """How many experiments ``cells`` makes, and of what, without making them (each costs ms)."""
    sweep = config.sweep
    factors = (len(sweep.seeds), len(sweep.bias_ratios or [None]), len(axis_points(sweep.axes)), len(_pairs(config)))
    text = " × ".join(f"{n} {what}{'' if n == 1 else 's'}" for n, what in zip(factors, ("seed", "bias ratio", "axis point", "mixture/method pair")))
    return factors[0] * factors[1] * factors[2] * factors[3], text


def check_size(config: ExperimentConfig) -> None:
    """A run of more than ``sweep.max_experiments`` experiments is refused (its dry run is not)."""
    count, factors = sweep_size(config)
    if count > config.sweep.max_experiments:
        raise ConfigError(f"config: sweep.max_experiments: this sweep is {count} experiments ({factors}), more than "
                          f"{config.sweep.max_experiments}: check its plan with --dry-run, then raise sweep.max_experiments")


def cells(config: ExperimentConfig) -> list[ExperimentConfig]:
    """Every experiment of the sweep: seeds × bias ratios × axis points × (mixture, method) pairs,
    seed-major. A cell keeps ``sweep.axes``, so its point can be read back (``ExperimentConfig.point``)."""
    sweep = config.sweep
    ratios = sweep.bias_ratios or [config.dataset.bias_ratio]
    pairs = _pairs(config)
    base = config.model_dump()
    at_point = [merge(base, nested(point)) for point in axis_points(sweep.axes)]
    return [
        ExperimentConfig.cell(
            merge(point, {"seed": seed, "dataset": {"bias_ratio": ratio}, "train": {"mixture": mixture, "method": method}})
        )
        for seed in sweep.seeds
        for ratio in ratios
        for point in at_point
        for mixture, method in pairs
    ]


def real_cells(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One cell per real table of the sweep (bias ratio × the axis points that change the real data)."""
    workspace = Workspace(Location(config.output_dir))
    found: dict[str, ExperimentConfig] = {}
    for cell in cells(config):
        found.setdefault(str(real_location(cell, workspace)), cell)
    return list(found.values())


def search_cells(config: ExperimentConfig) -> list[ExperimentConfig]:
    """One config per (bias ratio, mixture, method), at the first seed: what a search runs on."""
    return [cell for cell in cells(config) if cell.seed == config.sweep.seeds[0]]


def _experiments(config: ExperimentConfig) -> list[ExperimentConfig]:
    """Every experiment config the sweep trains on, the stage-1 searches' included."""
    found = cells(config)
    if config.sweep.search.num_samples:
        found += [stage1_cell(cell) for cell in search_cells(config) if searches_stage1(cell)]
    return found


def draws(config: ExperimentConfig, workspace: Workspace, real_info=None) -> list[Draw]:
    """Every draw of every experiment of the sweep (duplicates included)."""
    found = []
    for cell in _experiments(config):
        if get_mixture(cell.train.mixture).needs_synthetic:
            found.append(synthetic_draw(cell, workspace, real_info=real_info))
        if cell.generation.test_images_per_group:
            found.append(synthetic_draw(cell, workspace, test=True, real_info=real_info))
    return found


@dataclass
class PoolNeed:
    pool: Pool
    needed: dict[Group, int] = field(default_factory=dict)  # the largest draw per group
    held: dict[Group, int] = field(default_factory=dict)

    @property
    def to_add(self) -> int:
        return sum(max(0, n - self.held.get(g, 0)) for g, n in self.needed.items())


def pool_needs(config: ExperimentConfig, workspace: Workspace, real_info=None) -> list[PoolNeed]:
    """Each pool of the sweep, once, with the largest count any draw takes from each group."""
    needs: dict[str, PoolNeed] = {}
    for draw in draws(config, workspace, real_info):
        need = needs.setdefault(draw.pool.id, PoolNeed(draw.pool))
        for group, n in draw.counts.items():
            need.needed[group] = max(need.needed.get(group, 0), n)
    for need in needs.values():
        need.held = need.pool.held()
        need.pool.check_draw(need.needed, need.held)  # a pool that cannot grow: a shortfall fails the plan too
    return list(needs.values())


def prepare_pools(config: ExperimentConfig, workspace: Workspace) -> None:
    """Generate (or top up) every pool of the sweep to its largest draw, once, before any cell trains."""
    for need in pool_needs(config, workspace):
        if need.to_add or not is_complete(need.pool.location):  # an imported pool: imported once
            ensure_pool(config, need.pool, need.needed)


# --- the dry run ---------------------------------------------------------------------------


@dataclass
class StageWork:
    name: str
    epochs: int
    per_epoch: int  # images trained and validated each epoch
    once: int  # images evaluated once: the starting model's validation (step 0) and the selected model's test
    done: bool = False  # finished earlier (its stage_result.json): reused, not trained

    @property
    def image_passes(self) -> int:
        return 0 if self.done else self.epochs * self.per_epoch + self.once


def _rows(info: TableInfo, split: str) -> int:
    return sum(info.group_counts.get(split, {}).values())


def stage_work(config: ExperimentConfig, workspace: Workspace, real_info) -> dict[str, StageWork]:
    """The distinct stages of the sweep's experiments (without searches), by identity; a stage
    after a finished one gets that stage's real checkpoint, so its identity is exact too."""
    work: dict[str, StageWork] = {}
    for cell in cells(config):
        info = real_info(cell)
        real = str(real_location(cell, workspace))
        val, test = _rows(info, "val"), _rows(info, "test")
        mixture = get_mixture(cell.train.mixture)
        synthetic, synthetic_rows = "none", 0
        if mixture.needs_synthetic:
            draw = synthetic_draw(cell, workspace, real_info=real_info)
            synthetic, synthetic_rows = str(draw_location(draw, workspace)), sum(draw.counts.values())
        tables = {"real": (real,), "synthetic": (synthetic,), "mixed": (real, synthetic)}
        trained = {"real": _rows(info, "train"), "synthetic": synthetic_rows, "mixed": _rows(info, "train") + synthetic_rows}
        previous = None
        for plan in mixture.stages:
            spec = stage_spec(cell, plan, tables, real, previous)
            key = f"{spec.name}-{spec.key()}"
            finished = finished_stage(spec, workspace.runs)
            work[key] = StageWork(plan.name, spec.hparams["epochs"], trained[plan.data] + val, val + test, finished is not None)
            previous = finished.checkpoint_uri if finished else f"stage:{key}"
    return work


def dry_run(config: ExperimentConfig) -> str:
    """The sweep's plan, as ``jobs/sweep.py --dry-run`` prints it."""
    workspace = Workspace(Location(config.output_dir))
    infos: dict[str, TableInfo] = {}

    def real_info(cell: ExperimentConfig) -> TableInfo:
        key = str(real_location(cell, workspace))
        if key not in infos:
            infos[key] = planned_real_info(cell)
        return infos[key]

    lines = ["real tables:"]
    for cell in real_cells(config):
        location = real_location(cell, workspace)
        info = real_info(cell)
        state = "there" if is_complete(location) else "to ingest"
        counts = ", ".join(f"{g} {n}" for g, n in info.group_counts.get("train", {}).items())
        lines.append(f"  r={cell.dataset.bias_ratio}: {location} ({state}; {info.num_rows} images; train {counts})")
    count, factors = sweep_size(config)
    over = f"; more than sweep.max_experiments={config.sweep.max_experiments}: the run refuses it" if count > config.sweep.max_experiments else ""
    lines.append(f"experiments: {count} ({factors}){over}")
    points = axis_points(config.sweep.axes)
    if config.sweep.axes:
        lines.append(f"axis points: {len(points)} ({'; '.join(point_label(p) for p in points)})")
    needs = pool_needs(config, workspace, real_info)
    lines.append("synthetic pools:" if needs else "synthetic pools: none")
    for need in needs:
        pool = need.pool
        lines.append(f"  {pool.location} ({pool.info.extra['backend']}, {pool.split}): holds {sum(need.held.values())}, "
                     f"must add {need.to_add}")
        for group, n in sorted(need.needed.items()):
            held = need.held.get(group, 0)
            lines.append(f"    {group_name(*group)}: holds {held}, needs {n}, adds {max(0, n - held)}")
    lines += _generators(config, workspace)
    work = stage_work(config, workspace, real_info)
    search = config.sweep.search
    trials: list[StageWork] = []
    if search.num_samples:
        for cell in distinct_searches(search_cells(config)):  # as the run's searches share them, by key
            key, last = list(stage_work(_single(cell), workspace, real_info).items())[-1]
            trials += [replace(last, done=False)] * cell.sweep.search.num_samples  # a trial's hyperparameters are new
            if not last.done:  # the cell's first seed reuses its selected trial's stage: not trained twice
                work.pop(key, None)
    names: dict[str, int] = {}
    for stage in work.values():
        names[stage.name] = names.get(stage.name, 0) + 1
    done = sum(stage.done for stage in work.values())
    besides = " besides the searches' (a searched cell's first seed is its selected trial)" if search.num_samples else ""
    lines.append(f"stages to train after sharing: {len(work)} ({', '.join(f'{n} {name}' for name, n in sorted(names.items()))}){besides}; "
                 f"already trained: {done}")
    if search.num_samples:
        lines.append(f"search trials: {len(trials)} ({search.num_samples} per searched cell, its stage-1 search's included; "
                     "each trains its search's last stage)")
    generated = sum(need.pool.to_generate(need.needed, need.held) for need in needs)
    image_passes = sum(s.image_passes for s in [*work.values(), *trials])
    lines += _cost(config, rates(config), generated, image_passes)
    lines.append(_start_ups(config, sum(not s.done for s in work.values()) + len(trials)))
    return "\n".join(lines)


def _generators(config: ExperimentConfig, workspace: Workspace) -> list[str]:
    """The generators the platform trains before its pools (once each, found again by key), and what each costs."""
    jobs = {job.spec.key(): job for job in (generator_job(cell) for cell in real_cells(config)) if job is not None}
    lines = []
    for job in jobs.values():
        training = job.spec.training
        if finished_generator(job.spec, workspace.runs) is not None:
            lines.append(f"generator: {workspace.runs}/{job.spec.run_name} (there)")
            continue
        images = training["steps"] * training["batch_size"]
        rate = MEASURED_GENERATOR_TRAINING.get(("gpu" if job.resources.use_gpu else "cpu", tuple(training["channels"])))
        cost = f"; {images / rate / 3600:.2f} h at {rate:g} images/s (benchmarks/RESULTS.md)" if rate else "; no measured training rate"
        lines.append(f"generator: {workspace.runs}/{job.spec.run_name} (to train: {training['steps']} steps × {training['batch_size']} "
                     f"images on held-apart {config.dataset.name} images{cost})")
    return lines


def _start_ups(config: ExperimentConfig, runs: int) -> str:
    """What the image rates leave out: each stage's fixed cost, which small stages are mostly made of."""
    shape = f"{config.train.num_workers} {'GPU' if config.train.use_gpu else 'CPU'} worker(s) per stage"
    seconds = stage_start_s(config)
    if seconds is None:
        return f"stage start-ups: {runs} stages; no measured fixed cost for {shape}"
    return (f"stage start-ups: {runs} stages × {seconds:g} s = {runs * seconds / 3600:.2f} h one after another "
            f"(measured for {shape} on a 2-core CPU machine, benchmarks/RESULTS.md; not in the estimate above)")


def _single(cell: ExperimentConfig) -> ExperimentConfig:
    """A search cell as a one-experiment sweep (its own mixture, method, ratio and first seed)."""
    data = merge(cell.model_dump(), {"sweep": {"mixtures": [cell.train.mixture], "methods": [cell.train.method], "seeds": [cell.seed],
                                               "bias_ratios": None, "ablation_mixtures": []}})
    data["sweep"]["axes"] = {}  # the cell is at its point already (set, not merged: merging {} keeps the axes)
    return ExperimentConfig.model_validate(data)


def _cost(config: ExperimentConfig, rate: Rates, generated: int, image_passes: int) -> list[str]:
    lines = [f"images to generate: {generated}; image passes to train and evaluate: {image_passes} "
             "(stages not yet trained, epochs at their configured maximum)"]
    parts, total = [], 0.0
    for what, amount, per_second, source, setting in (
        ("generation", generated, rate.generation, rate.generation_source, "generation_images_per_second"),
        ("training", image_passes, rate.training, rate.training_source, "training_images_per_second"),
    ):
        if amount == 0:
            continue
        if per_second is None:
            parts.append(f"{what}: unknown ({source}; set sweep.cost.{setting})")
            total = float("nan")
            continue
        hours = amount / per_second / 3600
        total += hours
        parts.append(f"{what}: {hours:.2f} device-hours at {per_second:g} images/s ({source})")
    lines.append("estimated cost: " + ("; ".join(parts) if parts else "nothing to run"))
    if parts and total == total:  # not NaN
        lines.append(f"estimated total: {total:.2f} device-hours")
    return lines
