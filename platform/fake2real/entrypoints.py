"""What each ``jobs/*.py`` runs, and the summary it prints: the job level, in one place.

Each function takes a validated config, checks it once, calls the library and returns the text
the job prints, its URIs without credentials (``errors.redact``). ``jobs/*.py`` only parse
arguments and call one of these.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from fake2real.run.checks import check_cluster, check_experiments
from fake2real.config import ExperimentConfig
from fake2real.data.ingest import count_table
from fake2real.data.storage import Location
from fake2real.data.table import check_writable, read_info
from fake2real.errors import ConfigError, redact
from fake2real.run.experiment import run_experiment
from fake2real.prepare.generators import ensure_generator, generator_job
from fake2real.prepare.pools import ensure_pool
from fake2real.runtime import init_ray
from fake2real.run.sweep import SweepResult, check_sweep, run_sweep
from fake2real.run.sweep_plan import dry_run
from fake2real.prepare.synthetic import check_generation, synthetic_draw
from fake2real.report.html import build_report
from fake2real.track.mlflow_runs import Tracker, existing_store, resolve_uri, runs_page
from fake2real.track.names import FILTERS, SORT_METRIC
from fake2real.prepare.workspace import Workspace, planned_real_info, prepare_real


def ingest_job(config: ExperimentConfig) -> str:
    """``jobs/ingest.py``: the real table of ``config.dataset`` (built once, then reused)."""
    workspace = Workspace.create(config)
    with workspace.held():
        # prepare_real checks the listing (files, groups) before it starts any Ray work.
        path = prepare_real(config, workspace)
    info = read_info(path)
    return redact(f"real table: {path} ({info.num_rows} images)\n{count_table(info)}")


def generate_job(config: ExperimentConfig) -> str:
    """``jobs/generate.py``: the pool the mixture draws from, generated (or grown, or imported) to
    what it draws."""
    check_generation(config)
    workspace = Workspace.create(config)
    if config.generation.output:
        check_writable(Location(config.generation.output).parent)
    with workspace.held():
        draw = synthetic_draw(config, workspace)
        ensure_pool(config, draw.pool, draw.counts)
    info = read_info(draw.pool.location)
    lines = [f"synthetic pool: {draw.pool.location} ({info.num_rows} rows, {info.extra.get('rejections', 0)} rejections)"]
    return redact("\n".join(lines + [f"  {k}: {v}" for k, v in info.group_counts["train"].items()]))


def generate_dry_run(config: ExperimentConfig) -> str:
    """``jobs/generate.py --dry-run``: the pool's plan, nothing written (the real table's counts
    come from its listing)."""
    check_generation(config)
    draw = synthetic_draw(config, Workspace(Location(config.output_dir)), real_info=planned_real_info)
    return redact(f"pool {draw.pool.id}: {draw.pool.dry_run(draw.counts)}")


def train_generator_job(config: ExperimentConfig) -> str:
    """``jobs/train_generator.py``: the generator the config's backend trains (once, then reused),
    with its measured quality per group."""
    if generator_job(config) is None:
        raise ConfigError(f"config: generation.backend={config.generation.backend} trains no generator here "
                          "(generation.backend=group_diffusion without generation.group_diffusion.model does)")
    check_generation(config)
    workspace = Workspace.create(config)
    with workspace.held():
        result = ensure_generator(config, workspace)
    quality = result["quality"]
    groups = sorted({key.rsplit("/", 1)[-1] for key in quality if "/group/" in key})
    lines = [f"generator: {redact(result['pipeline_uri'])} (final training loss {result['metrics'].get('train/loss', float('nan')):.4f})",
             "| group | Y read as its class | B read as its bias |", "|---|---|---|"]
    lines += [f"| {g} | {quality[f'quality/generated/y_accuracy/group/{g}']:.3f} | {quality[f'quality/generated/b_accuracy/group/{g}']:.3f} |"
              for g in groups]
    lines.append(f"real held-apart images: Y {quality['quality/real/y_accuracy']:.3f}, B {quality['quality/real/b_accuracy']:.3f}; "
                 f"G-leakage AUROC (real vs generated) {quality['quality/g_leakage_auroc']:.3f}")
    return "\n".join(lines)


def train_job(config: ExperimentConfig) -> str:
    """``jobs/train.py``: one experiment, tracked; returns its summary."""
    check_experiments(config, [config.train.mixture], [config.train.method])
    workspace = Workspace.create(config)
    tracker = Tracker(resolve_uri(config.tracking.uri), config.tracking.experiment, workspace.artifacts)
    with workspace.held():
        prepare_real(config, workspace)
        init_ray()
        check_cluster(config, tracker.uri)
        result = run_experiment(config, tracker)
    metrics = result.metrics
    lines = [f"{result.mixture} / {result.method} / seed {result.seed} (MLflow run {result.run_id})"]
    shown = ("test/", "synthetic_test/", "probe/", f"{result.method}/C")
    lines += [f"  {k}: {metrics[k]:.4f}" for k in sorted(metrics) if k.startswith(shown) and "/group/" not in k]
    lines += [f"  checkpoint: {result.stages[-1].checkpoint_uri}"]
    return redact("\n".join(lines))


def report_job(tracking_uri: str | None, experiment: str, output: Path | None, sweep_run: str | None, saliency: bool) -> str:
    """``jobs/report.py``: the HTML report of a sweep, from its MLflow runs."""
    uri = existing_store(resolve_uri(tracking_uri))  # a mistyped sqlite path: refused, not created empty
    path = build_report(uri, experiment, output, sweep_run, saliency=saliency)
    return redact(f"report: {path.absolute()}")


def sweep_job(config: ExperimentConfig) -> str:
    """``jobs/sweep.py``: the sweep's results table, and where to look at it."""
    result = run_sweep(config)
    return redact(f"\n{result.table}\n{where_to_look(result)}")


def sweep_dry_run(config: ExperimentConfig) -> str:
    """``jobs/sweep.py --dry-run``: what the sweep would ingest, generate and train, and its cost
    (no Ray, nothing written)."""
    check_sweep(config)
    return redact(dry_run(config))


def where_to_look(result: SweepResult) -> str:
    """Where the sweep's results are, as commands that work as printed (this Python's own MLflow),
    with a tracking URI's credentials left out: the user fills them in again."""
    python, uri = shlex.quote(sys.executable), shlex.quote(result.tracking_uri)
    lines = [f"results table and chart: {result.directory}/results.md, results.png"]
    if result.tracking_uri.startswith(("http://", "https://")):
        lines.append(f"MLflow (sweep run {result.run_id}): {runs_page(result.tracking_uri, result.experiment_id)}")
    else:
        lines.append(f"MLflow (sweep run {result.run_id}): {python} -m mlflow ui --backend-store-uri {uri}")
        lines.append(f"  then open {runs_page('http://127.0.0.1:5000', result.experiment_id)}")
    lines.append(f"  experiments, best first: filter {FILTERS['experiments']} and sort by {SORT_METRIC}")
    lines.append(f"figures (HTML report): {python} jobs/report.py --tracking-uri {uri} --sweep-run {result.run_id}")
    return redact("\n".join(lines))
