"""The sweep: cells (bias ratios × axis points × mixtures × methods), each run for every seed, and its results.

Its synthetic pools are generated first, each once, to the largest draw of any cell
(``sweep_plan.py``, which also prints the plan of a ``--dry-run``).

Without a search (``sweep.search.num_samples: 0``) every experiment trains with the configured
hyperparameters, started seed-major (so a long sweep has whole seeds done early), as many at once
as the cluster holds (``experiment.run_experiments``). With a search, each cell is searched first
(search.py: Ray Tune + Optuna + ASHA, trials at once) and its selected configuration then runs for
every seed, seeds at once. The results table is rewritten after every unit of work.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fake2real.config import ExperimentConfig, axis_name, point_label
from fake2real.data.storage import Location, upload
from fake2real.errors import ConfigError
from fake2real.run.checks import check_cluster, check_experiments
from fake2real.run.experiment import ExperimentResult, run_experiments
from fake2real.report.table import markdown, write_charts, write_csv
from fake2real.runtime import init_ray
from fake2real.run.capacity import check_local_cluster, experiments_at_once
from fake2real.run.search import run_searched_cell
from fake2real.run.search_plan import declared_space, distinct_searches, searches_stage1
from fake2real.run.sweep_plan import cells, check_size, pool_needs, prepare_pools, real_cells, search_cells
from fake2real.prepare.pool_sources import pool_source
from fake2real.prepare.synthetic import check_sweep_generation
from fake2real.track.mlflow_runs import Tracker, resolve_uri
from fake2real.track.names import LEVEL_TAG, SWEEP, sweep_run_name
from fake2real.data.datasets import logged_params
from fake2real.track.ray_metrics import SWEEP_CELLS, SWEEP_CELLS_FINISHED
from fake2real.prepare.workspace import Workspace, planned_real_info, prepare_real


@dataclass
class SweepResult:
    results: list[ExperimentResult]
    table: str
    directory: Location  # local folder or URI
    run_id: str
    tracking_uri: str
    experiment_id: str  # the MLflow experiment holding the sweep run


def _all_names(config: ExperimentConfig) -> tuple[list[str], list[str]]:
    sweep = config.sweep
    return sweep.mixtures + sweep.ablation_mixtures, sweep.methods + sweep.ablation_methods


def check_sweep(config: ExperimentConfig) -> None:
    """Every check that must fail before a sweep starts any work (or prints its dry run)."""
    check_experiments(config, *_all_names(config))
    mixtures = _all_names(config)[0]
    if config.sweep.search.num_samples and any(searches_stage1(cell) for cell in search_cells(config)):
        mixtures = mixtures + ["synthetic_only"]  # the stage-1 search trains on FFR's synthetic data
        if config.sweep.search.num_samples < 2:
            raise ConfigError("config: sweep.search.stage1 splits a cell's sweep.search.num_samples between its stage-1 search "
                              f"and its own: it needs at least 2, got {config.sweep.search.num_samples}")
    check_sweep_generation(config, mixtures)
    if config.sweep.search.num_samples:  # every search's space, before any cell trains
        for search in distinct_searches(search_cells(config)):
            declared_space(search)
    # A local cluster's CPUs are known before Ray starts: a trainer it can never hold fails here,
    # not once the sweep's MLflow runs exist (each distinct train section: an axis may change it).
    for cell in {cell.train.model_dump_json(): cell for cell in search_cells(config)}.values():
        check_local_cluster(cell)
    # A pool that cannot grow refuses a draw larger than it holds: here, before any work.
    pool_source(config).check_sweep(lambda: pool_needs(config, Workspace(Location(config.output_dir)), planned_real_info))


def run_sweep(config: ExperimentConfig) -> SweepResult:
    check_size(config)  # first: the other checks go cell by cell
    check_sweep(config)
    workspace = Workspace.create(config)
    with workspace.held():  # one sweep at a time tops up the pools of this output_dir
        return _run(config, workspace)


def _run(config: ExperimentConfig, workspace: Workspace) -> SweepResult:
    uri = resolve_uri(config.tracking.uri)
    tracker = Tracker(uri, config.tracking.experiment, workspace.artifacts)
    # Every cell shares the dataset: build its tables before Ray starts, so bad data fails fast.
    for cell in real_cells(config):
        prepare_real(cell, workspace)
    init_ray()
    check_cluster(config, uri)
    # Each synthetic pool once, to the largest draw of any cell, before the first cell trains.
    prepare_pools(config, workspace)

    key = config.digest()
    params = {**config.model_dump(mode="json"), "dataset": logged_params(config.dataset, mode="json")}
    sweep_run = tracker.run_for(f"sweep-{key}", sweep_run_name(config.name), params=params, tags={LEVEL_TAG: SWEEP})
    directory = workspace.results / f"{config.name}-{key}"
    ratios = config.sweep.bias_ratios or [config.dataset.bias_ratio]
    title = f"{config.name}: {config.dataset.name}, bias ratio {', '.join(map(str, ratios))}"
    if config.sweep.axes:
        title += f", over {' × '.join(axis_name(key) for key in config.sweep.axes)}"
    searched = config.sweep.search.num_samples > 0
    # Without a search, a unit of work is one experiment; with one, a cell (search, then seeds).
    grid = search_cells(config) if searched else cells(config)
    # Progress for the Grafana board (this driver is a Ray driver now).
    total, finished = SWEEP_CELLS.create(), SWEEP_CELLS_FINISHED.create()
    progress_tags = {"sweep": f"{config.name}-{key}"}  # as the results folder is named
    total.set(len(grid), tags=progress_tags)
    finished.set(0, tags=progress_tags)
    results: list[ExperimentResult] = []

    def progress(done: list[ExperimentResult], number: int) -> None:
        total.set(len(grid), tags=progress_tags)
        finished.set(number, tags=progress_tags)
        # The table so far, after every unit: a long sweep can be read while it runs.
        _write_results(done, directory, title, tracker if number == len(grid) else None, sweep_run)

    with tracker.failed_on_error(sweep_run):
        if searched:
            for number, cell in enumerate(grid, 1):
                print(f"[sweep] cell {number}/{len(grid)}: {_cell_text(cell)} {config.sweep.search.num_samples} trials, "
                      f"then seeds {config.sweep.seeds}", flush=True)
                results += run_searched_cell(cell, config.sweep.seeds, tracker, sweep_run, workspace.runs)
                progress(results, number)
        else:
            at_once = experiments_at_once(config)
            print(f"[sweep] {len(grid)} experiments, {at_once} at a time", flush=True)

            def finished_one(done: list[ExperimentResult], latest: ExperimentResult) -> None:
                results[:] = done
                print(f"[sweep] experiment {len(done)}/{len(grid)} done: {_cell_text(latest)} seed {latest.seed}", flush=True)
                progress(done, len(done))

            run_experiments(grid, tracker, sweep_run, at_once, finished_one)
    tracker.finish(sweep_run)
    return SweepResult(results, markdown(results, title), directory, sweep_run, uri, tracker.experiment_id)


def _cell_text(cell) -> str:
    """``r=0.99 ffr/erm``, after its point when the sweep has axes (a config or a result)."""
    if isinstance(cell, ExperimentConfig):
        ratio, mixture, method, point = cell.dataset.bias_ratio, cell.train.mixture, cell.train.method, cell.point()
    else:
        ratio, mixture, method, point = cell.bias_ratio, cell.mixture, cell.method, cell.point
    return (f"[{point_label(point)}] " if point else "") + f"r={ratio} {mixture}/{method}"


def _write_results(results, directory, title: str, tracker: Tracker | None, sweep_run: str) -> None:
    """results.md/csv/png rendered on the driver's disk, stored in the workspace (local or a
    URI) and, with a tracker (at the end), attached to the sweep's MLflow run."""
    with tempfile.TemporaryDirectory(prefix="fake2real-results-") as rendered:
        local = Path(rendered)
        (local / "results.md").write_text(markdown(results, title))
        write_csv(results, local / "results.csv")
        for artifact in ["results.md", "results.csv", *write_charts(results, local, title)]:
            upload(local / artifact, directory / artifact)
            if tracker is not None:
                tracker.client.log_artifact(sweep_run, str(local / artifact))
