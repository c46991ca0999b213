"""Hyperparameter search of one sweep cell: Ray Tune + Optuna (TPE) + ASHA, Train inside Tune.

A cell is (dataset, bias ratio, mixture, method). Its search

1. trains the mixture's stages before the last one once, with the configured hyperparameters
   (FFR's synthetic stage 1): by their hash, every method and trial of the same (dataset, r,
   seed) shares them;
2. runs ``sweep.search.num_samples`` Tune trials over the last stage: the method's declared space
   (its file under ``train/methods/``) plus learning rate, weight decay, epochs and, for a stage
   that starts from a previous stage's model, ``freeze_bn``. The first trial is the configured
   defaults. A trial is a function trainable that runs the experiment, whose last stage reports
   each epoch's validation WGA to Tune: ASHA stops the unpromising ones. A single-worker stage
   trains in the trial's own process, which holds the worker's resources and is reused by the
   next trial (``reuse_actors``); several workers are a ``TorchTrainer`` the trial waits on;
3. selects the trial with the best validation WGA (never test; ties by ``selection_key``) and
   writes ``best.json`` in the cell's Tune folder, the cell's done marker.

With ``sweep.search.stage1`` a cell whose first stage trains on synthetic data only (FFR and its
ablations) first gets its stage 1 searched — as the cell ``synthetic_only``/``erm``, so once per
(dataset, r, search) and shared by every method — and trains its stage 1 with the selected
hyperparameters: FFR reuses the selected trial's stage itself; an ablation retrains it on its
own synthetic data.

Tune's state lives in ``<runs>/tune/cell-<key>``, the key a hash of everything the search
depends on: a sweep whose driver died is resumed by running it again (``Tuner.restore``), without
re-running finished trials; a trial's stages that finished are reused by hash in any case.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from fake2real.run.capacity import concurrent_trials, experiments_at_once, trial_resources
from fake2real.config import ExperimentConfig, merge, point_label
from fake2real.data.markers import read_marker, write_marker
from fake2real.data.storage import Location
from fake2real.errors import Fake2RealError
from fake2real.run.experiment import run_experiments, run_trial, train_shared_stages
from fake2real.run.search_plan import apply, cell_key, declared_space, last_stage_cell, search_key, search_seed, searches_stage1, stage1_cell, with_seed
from fake2real.stats import interval
from fake2real.track.names import (
    AXES_TAG, CELL, LEVEL_TAG, SELECTION_STEP, TEST_WGA, VAL_WGA, cell_run_name, experiment_run_name, mark_selected,
)
from fake2real.train.metrics import selection_key
from fake2real.train.mixtures import get_mixture
from fake2real.train.selection import SELECTION_METRIC

DONE_FILE = "best.json"


@dataclass
class CellSearch:
    key: str
    params: dict  # the selected trial's hyperparameters (search-space names)
    best_val_wga: float
    trials: int
    trial_epochs: int  # epochs trained over all trials (ASHA's saving shows here)
    reused: bool = False


def to_tune(distribution: tuple | list):
    """A declared distribution (``Hyperparameter.distribution``) as a Tune search domain."""
    from ray import tune

    kind, *args = distribution
    if kind == "loguniform":
        return tune.loguniform(*args)
    if kind == "uniform":
        return tune.uniform(*args)
    if kind == "int":
        return tune.randint(args[0], args[1] + 1)  # Tune's upper bound is exclusive
    if kind == "choice":
        return tune.choice(list(args[0]))
    raise ValueError(f"unknown distribution kind '{kind}'")


def search_space(config: ExperimentConfig) -> tuple[dict, dict]:
    """(Tune space, the configured defaults as one point): ``search_plan.declared_space`` as Tune domains."""
    declared, defaults = declared_space(config)
    return {name: to_tune(distribution) for name, distribution in declared.items()}, defaults


# A trial (re)started while the tracking server restarts waits this long for it, then fails in one
# line; calls during the trial rely on MLflow's own retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES).
TRIAL_TRACKING_WAIT_S = 120.0


def _trial(params: dict, cell: dict, tracking: dict, parent_run_id: str) -> None:
    """One Tune trial: the cell's experiment with ``params``, its last stage reporting to Tune."""
    from ray import tune

    from fake2real.track.mlflow_runs import Tracker

    config = apply(ExperimentConfig.model_validate(cell), params)
    tracker = Tracker(tracking["uri"], tracking["experiment"], tracking["artifacts"], wait_s=TRIAL_TRACKING_WAIT_S)
    result = run_trial(config, tracker, parent_run_id, tune.get_context().get_trial_id())
    if result.stages[-1].reused:  # trained by an earlier attempt: Tune still needs its result
        tune.report({k: v for k, v in result.stages[-1].metrics.items() if k.startswith(("val/", "epoch", "final", SELECTION_STEP))})


def _tuner(config: ExperimentConfig, trainable, folder: Location, key: str):
    """The cell's Tune experiment: restored when a killed driver left it, else a new one."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    path = str(folder / f"cell-{key}")
    if tune.Tuner.can_restore(path):
        print(f"[search] cell {key}: resuming its Tune experiment", flush=True)
        return tune.Tuner.restore(path, trainable, resume_errored=True)
    space, defaults = search_space(config)
    search = config.sweep.search
    # ASHA's time is the loop's selection step: epochs that compete for selection (a warm-up
    # model's, e.g. JTT's, count 0), then one more for the selected model's report.
    max_t = int(defaults["epochs"]) + 1
    scheduler = (
        ASHAScheduler(time_attr=SELECTION_STEP, max_t=max_t, grace_period=search.grace_period, reduction_factor=search.reduction_factor)
        if search.asha else FIFOScheduler()
    )
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=SELECTION_METRIC,
            mode="max",
            search_alg=OptunaSearch(points_to_evaluate=[defaults], seed=search_seed(config, key)),
            scheduler=scheduler,
            num_samples=search.num_samples,
            max_concurrent_trials=concurrent_trials(config),
            reuse_actors=True,  # a trial's process, torch imported and warm, runs the next trial
        ),
        # A trial whose node died runs again (its stage resumes from its last checkpoint), as
        # often as a stage's worker group may restart.
        run_config=tune.RunConfig(name=f"cell-{key}", storage_path=str(folder), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=config.train.max_failures)),
    )


def search_cell(config: ExperimentConfig, tracker, cell_run_id: str, runs: str | Location) -> CellSearch:
    """Search one cell (``config`` at the cell's first seed) or return its finished search."""
    from ray import tune

    key = search_key(config)
    folder = Location(runs) / "tune"
    done = read_marker(folder / f"cell-{key}" / DONE_FILE)
    if done is not None:
        return CellSearch(**(done | {"reused": True}))
    # Shared work first, once: the tables (generated here, not by concurrent trials) and the
    # stages before the last (FFR's stage 1). Trials only train the last stage.
    train_shared_stages(config, tracker, cell_run_id)
    tracking = {"uri": tracker.uri, "experiment": tracker.experiment_name, "artifacts": str(tracker.artifact_root)}
    trainable = tune.with_resources(
        tune.with_parameters(_trial, cell=config.model_dump(mode="json"), tracking=tracking, parent_run_id=cell_run_id),
        trial_resources(config),
    )
    grid = _tuner(config, trainable, folder, key).fit()
    finished = [r for r in grid if r.error is None and SELECTION_METRIC in (r.metrics or {})]
    if not finished:
        first = next((r.error for r in grid if r.error is not None), None)
        raise Fake2RealError(f"search: every trial of cell {key} failed: {str(first).strip().splitlines()[-1] if first else 'no result'}")
    tracker.close_stopped_trials(cell_run_id, {r.metrics["trial_id"] for r in grid if r.error is None and "trial_id" in (r.metrics or {})})
    best = max(finished, key=lambda r: selection_key(r.metrics))  # equal keys: the earliest trial
    epochs = sum(int(r.metrics.get(SELECTION_STEP, 0)) - (1 if r.metrics.get("final") else 0) for r in finished)
    outcome = CellSearch(key, dict(best.config), float(best.metrics[SELECTION_METRIC]), len(grid), epochs)
    write_marker(folder / f"cell-{key}" / DONE_FILE, asdict(outcome))
    return outcome


def with_searched_stage1(cell: ExperimentConfig, tracker, cell_run: str, runs: str) -> ExperimentConfig:
    """The cell with ``train.synthetic`` set to its searched stage 1's selection."""
    stage1 = stage1_cell(cell)
    found = search_cell(stage1, tracker, cell_run, runs)
    print(f"[search] r={cell.dataset.bias_ratio} stage 1: selected {found.params} (val WGA {found.best_val_wga:.3f})", flush=True)
    if "stage1.selected.lr" not in tracker.client.get_run(cell_run).data.params:
        tracker.log_params(cell_run, {f"stage1.selected.{k}": v for k, v in found.params.items()})
    selected = apply(stage1, found.params).train.synthetic
    return ExperimentConfig.model_validate(merge(last_stage_cell(cell).model_dump(), {"train": {"synthetic": selected.model_dump()}}))


def run_searched_cell(cell: ExperimentConfig, seeds: list[int], tracker, sweep_run_id: str, runs: str) -> list:
    """A cell's MLflow run (under the sweep) holding its search trials and the selected
    configuration's experiment for every seed; the cell run gets the mean and 95 % CI half-width
    of its seeds' metrics (same names as an experiment's, plus ``_ci95``), so cells sort by them."""
    ratio, mixture, method, point = cell.dataset.bias_ratio, cell.train.mixture, cell.train.method, cell.point()
    cell_run = tracker.run_for(
        f"cell-{cell_key(cell)}", cell_run_name(ratio, mixture, method, point_label(point)), sweep_run_id,
        params={"bias_ratio": ratio, "mixture": mixture, "method": method, "search": cell.sweep.search.model_dump(),
                **{f"axis.{key}": value for key, value in point.items()}},
        tags={LEVEL_TAG: CELL, **({AXES_TAG: json.dumps(point)} if point else {})},
    )
    with tracker.failed_on_error(cell_run):
        if searches_stage1(cell):
            cell = with_searched_stage1(cell, tracker, cell_run, runs)
        found = search_cell(cell, tracker, cell_run, runs)
        print(f"[search] r={ratio} {mixture}/{method}: selected {found.params} (val WGA {found.best_val_wga:.3f}, "
              f"{found.trials} trials, {found.trial_epochs} trial-epochs)", flush=True)
        if "selected.lr" not in tracker.client.get_run(cell_run).data.params:
            tracker.log_params(cell_run, {f"selected.{k}": v for k, v in found.params.items()})
        selected = apply(cell, found.params)
        results = run_experiments([with_seed(selected, seed) for seed in seeds], tracker, cell_run, experiments_at_once(cell))
        for result in results:  # seed 0's run may be the selected trial's: name and tag it for what it is now
            mark_selected(tracker.client, result.run_id, experiment_run_name(ratio, mixture, method, result.seed, point_label(point)))
            tracker.finish_stage_runs(result.run_id, [plan.name for plan in get_mixture(mixture).stages])
    summary = {"search/trials": found.trials, "search/trial_epochs": found.trial_epochs, "search/best_trial_val_wga": found.best_val_wga}
    for metric in (TEST_WGA, "test/balanced_accuracy", VAL_WGA):
        spread = interval([r.metrics.get(metric) for r in results])
        if spread is None:
            continue
        summary[metric] = spread.mean
        if spread.n > 1:  # one seed has no interval (not a zero-width one)
            summary[f"{metric}_ci95"] = spread.high - spread.mean
    tracker.log_metrics(cell_run, summary)
    tracker.finish(cell_run)
    return results
