"""From a config to synthetic data: the pool an experiment draws from, and how many images
(making them: ``pools.py``).

A pool holds the images of one way of making them — dataset or prompt template, generator and its
settings, bias words on or off, degradation — never a count (``generate/plan.py``). An experiment
draws the first k images of each group of its pool (as the reference read the first
``num_per_group`` files of each group's folder): a smaller budget is a prefix of a larger one,
and every seed of a cell sees the same images, so seeds vary the training only. k comes from
``generation.images_per_group`` or the mixture's count rule on the real table's train group
counts (the ``biased`` rule splits ``images_per_group``, when set, by the real groups too).

A draw is a view of its pool (``data/table.write_view``): no image is copied. A sweep sizes
every pool once, to the largest count any of its cells draws, before its first cell trains
(``prepare_pools``); a pool asked for more later grows by top-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from fake2real.config import ExperimentConfig
from fake2real.data.storage import Location
from fake2real.data.table import group_name, read_info
from fake2real.errors import ConfigError
from fake2real.generate.backends import backend_of, settings_of
from fake2real.generate.filters import make_filters
from fake2real.generate.plan import draw_id
from fake2real.train.mixtures import Mixture, biased_counts, get_mixture, synthetic_counts
from fake2real.prepare.pool_sources import Group, Pool, pool_source
from fake2real.prepare.workspace import Workspace, prepare_real


@dataclass
class Draw:
    """The first ``counts[g]`` images of each group of ``pool``."""

    pool: Pool
    counts: dict[Group, int]

    @property
    def id(self) -> str:
        return draw_id(self.pool.id, self.counts)


def needs_generation(config: ExperimentConfig, mixtures: list[str]) -> bool:
    """Whether any of these mixtures trains on synthetic data, or runs get a synthetic test set."""
    return config.generation.test_images_per_group > 0 or any(get_mixture(m).needs_synthetic for m in mixtures)


def check_generation(config: ExperimentConfig) -> None:
    """Driver-side checks of the generation settings, before any Ray work."""
    make_filters(config.generation.filters)
    backend_of(config).check(settings_of(config), config.dataset)
    pool_source(config).check(config)


def check_sweep_generation(config: ExperimentConfig, mixtures: list[str]) -> None:
    """Refuse the generation options that would give one mixture of a sweep another's synthetic data.

    ``generation.counts_from`` gives every mixture one budget: refused when a synthetic mixture of
    the sweep has another count rule. ``generation.output`` is one pool's folder: refused when the
    sweep's synthetic mixtures need images made in several ways (bias words on and off, degraded
    or not). Budgets and bias ratios are only counts: they draw from one pool.
    """
    gen = config.generation
    synthetic = [get_mixture(name) for name in dict.fromkeys(mixtures) if get_mixture(name).needs_synthetic]
    if gen.counts_from is not None:
        other = [m for m in synthetic if m.count_rule != gen.counts_from]
        if other:
            raise ConfigError(
                f"config: generation.counts_from={gen.counts_from} would give mixture '{other[0].name}' the "
                f"'{gen.counts_from}' budget instead of its own '{other[0].count_rule}'; unset it for a sweep"
            )
    variants = {_variant(config, m) for m in synthetic}
    if gen.output is not None and len(variants) > 1:
        raise ConfigError(
            f"config: generation.output: one folder holds one synthetic pool, but this sweep's mixtures "
            f"({', '.join(m.name for m in synthetic)}) need images with and without bias words or degradation; unset it for a sweep"
        )


def _variant(config: ExperimentConfig, mixture: Mixture, test: bool = False) -> tuple:
    """What a mixture changes in how its images are made: (bias words, degradation)."""
    gen = config.generation
    bias_words = True if test else gen.bias_words and mixture.bias_words
    degradation = gen.ablation_degradation.model_dump() if mixture.degrade and not test else None
    pool_source(config).check_variant(config, mixture.name, bias_words, degradation is not None)
    return bias_words, None if degradation is None else tuple(sorted(degradation.items()))


def synthetic_pool(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False) -> Pool:
    """The pool a mixture draws from (default: ``train.mixture``'s); ``test``: the held-out
    synthetic test pool — bias words on, never degraded, the same for every mixture so their
    synthetic-test metrics compare."""
    mixture = mixture or get_mixture(config.train.mixture)
    bias_words, degradation = _variant(config, mixture, test)
    source = pool_source(config)
    return source.of(config, "test" if test else "train", source.names(config), bias_words, dict(degradation) if degradation else None,
                     lambda name, pid: _pool_location(config, workspace, name, pid, test))


def _pool_location(config: ExperimentConfig, workspace: Workspace, name: str, pid: str, test: bool) -> Location:
    if config.generation.output and not test:
        return Location(config.generation.output)
    return workspace.data / f"pool-{'test-' if test else ''}{name}-{pid}"


def synthetic_counts_for(
    config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None, pool: Pool, test: bool = False, real_info=None
) -> dict[Group, int]:
    """Images per group an experiment draws: ``test_images_per_group`` for the test pool, else
    ``images_per_group`` or the mixture's count rule on the real table's train group counts
    (``real_info(config)``, when given, instead of the real table: a dry run writes none)."""
    gen = config.generation
    mixture = mixture or get_mixture(config.train.mixture)
    if test:
        return {g: gen.test_images_per_group for g in pool.groups}
    rule = gen.counts_from or mixture.count_rule
    # The biased rule shares images_per_group too by the real groups' shares: it needs the real table.
    if gen.images_per_group is not None and rule != "biased":
        return {g: gen.images_per_group for g in pool.groups}
    if rule is None:
        raise ConfigError(
            f"config: mixture '{mixture.name}' uses no synthetic data; set generation.images_per_group, "
            "generation.counts_from or another train.mixture"
        )
    real = Location(gen.real_table) if gen.real_table else None
    if real is None and real_info is not None:
        real_info, real = real_info(config), f"of dataset.{config.dataset.name}"
    else:
        real = real or prepare_real(config, workspace)
        real_info = read_info(real)
    class_names, bias_names = pool.info.class_names, pool.info.bias_names
    if (len(real_info.class_names), len(real_info.bias_names)) != (len(class_names), len(bias_names)):
        raise ConfigError(
            f"config: generation.prompts: the template has {len(class_names)} classes × {len(bias_names)} bias values, "
            f"the real table {real} {len(real_info.class_names)} × {len(real_info.bias_names)}"
        )
    train = real_info.group_counts.get("train", {})
    real_counts = {g: train.get(group_name(*g), 0) for g in pool.groups}
    if gen.images_per_group is None:
        return synthetic_counts(rule, real_counts)
    counts = biased_counts(gen.images_per_group, real_counts)
    if not counts:
        raise ConfigError(f"config: the 'biased' count rule shares generation.images_per_group by the real training groups; {real} has none")
    return counts


def synthetic_draw(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False, real_info=None) -> Draw:
    pool = synthetic_pool(config, workspace, mixture, test)
    return Draw(pool, synthetic_counts_for(config, workspace, mixture, pool, test, real_info))


def synthetic_plan(config: ExperimentConfig, workspace: Workspace, mixture: Mixture | None = None, test: bool = False):
    """``(pool id, plan, pool info)``: the rows of the pool an experiment draws (the plan a draw needs, to inspect)."""
    draw = synthetic_draw(config, workspace, mixture, test)
    return draw.pool.id, draw.pool.plan(draw.counts), draw.pool.info


def draw_location(draw: Draw, workspace: Workspace) -> Location:
    test = draw.pool.split == "test"
    return workspace.data / f"synthetic-{'test-' if test else ''}{draw.pool.info.dataset}-{draw.id}"
