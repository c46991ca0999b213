"""The sweep: a grid of experiments (mixtures × methods × seeds) and its results table.

For now a fixed grid with fixed hyperparameters; the entry point and its flags stay stable
when Ray Tune + Optuna replace the grid.
"""

from __future__ import annotations

import itertools
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fake2real.config import ExperimentConfig, merge
from fake2real.data.storage import Location, upload
from fake2real.experiment import ExperimentResult, run_experiment, validate
from fake2real.report.table import bar_chart, markdown, write_csv
from fake2real.runtime import init_ray
from fake2real.track.mlflow_runs import Tracker, resolve_uri
from fake2real.workspace import Workspace, prepare_real


@dataclass
class SweepResult:
    results: list[ExperimentResult]
    table: str
    directory: Location  # local folder or URI
    run_id: str
    tracking_uri: str


def cells(config: ExperimentConfig) -> list[ExperimentConfig]:
    grid = itertools.product(config.sweep.mixtures, config.sweep.methods, config.sweep.seeds)
    base = config.model_dump()
    return [
        ExperimentConfig.model_validate(merge(base, {"seed": seed, "train": {"mixture": mixture, "method": method}}))
        for mixture, method, seed in grid
    ]


def run_sweep(config: ExperimentConfig) -> SweepResult:
    validate(config, config.sweep.mixtures, config.sweep.methods)
    workspace = Workspace.create(config)
    uri = resolve_uri(config.tracking.uri)
    tracker = Tracker(uri, config.tracking.experiment, workspace.artifacts)
    # Every cell shares the dataset: build its table before Ray starts, so bad data fails fast.
    prepare_real(config, workspace)
    init_ray()

    key = config.digest()
    sweep_run = tracker.run_for(f"sweep-{key}", f"sweep-{config.name}", params=config.model_dump(mode="json"))
    try:
        results = [run_experiment(cell, tracker, parent_run_id=sweep_run) for cell in cells(config)]
    except BaseException:
        tracker.finish(sweep_run, "FAILED")
        raise

    directory = workspace.results / f"{config.name}-{key}"
    title = f"{config.name}: {config.dataset.name}, bias ratio {config.dataset.bias_ratio}"
    table = markdown(results, title)
    # Rendered on the driver's disk, then stored in the workspace (local or a URI) and in MLflow.
    with tempfile.TemporaryDirectory(prefix="fake2real-results-") as rendered:
        local = Path(rendered)
        (local / "results.md").write_text(table)
        write_csv(results, local / "results.csv")
        bar_chart(results, local / "results.png", title)
        for artifact in ("results.md", "results.csv", "results.png"):
            upload(local / artifact, directory / artifact)
            tracker.client.log_artifact(sweep_run, str(local / artifact))
    tracker.finish(sweep_run)
    return SweepResult(results, table, directory, sweep_run, uri)


def where_to_look(result: SweepResult) -> str:
    ui = f"mlflow ui --backend-store-uri {shlex.quote(result.tracking_uri)}"
    if not result.tracking_uri.startswith("sqlite:"):
        ui = f"open {result.tracking_uri}"
    return "\n".join(
        [
            f"results table and chart: {result.directory}/results.md, results.png",
            f"MLflow (sweep run {result.run_id}): {ui}  →  http://127.0.0.1:5000, sort by test/worst_group_accuracy",
        ]
    )
