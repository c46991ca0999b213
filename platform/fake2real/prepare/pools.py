"""Making and drawing synthetic pools: each pool made (or grown) to what is drawn from it, and the
view each experiment trains on. What a pool is and how many images a draw takes: ``synthetic.py``;
how each kind of pool is made: ``pool_sources.py``.
"""

from __future__ import annotations

from fake2real.config import ExperimentConfig
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo, is_complete, is_current_view, write_view
from fake2real.generate.plan import drawn_ids
from fake2real.prepare.pool_sources import Group, Pool
from fake2real.prepare.synthetic import Draw, draw_location, synthetic_draw
from fake2real.train.mixtures import Mixture
from fake2real.prepare.workspace import Workspace


def ensure_pool(config: ExperimentConfig, pool: Pool, counts: dict[Group, int]) -> None:
    """Make ``pool`` hold at least ``counts[g]`` images of each group: generated (or topped up),
    or, for an imported pool, imported once and checked for a shortfall."""
    pool.check_current()
    pool.ensure(config, counts)


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
    draw.pool.check_current()
    held = draw.pool.held() if is_complete(draw.pool.location) else {}
    if any(held.get(g, 0) < n for g, n in draw.counts.items()):
        ensure_pool(config, draw.pool, draw.counts)
    return draw_table(draw, workspace)
