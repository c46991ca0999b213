"""One experiment — (dataset, mixture, method, seed) — from data to selected model.

Real table → (synthetic draw) → the mixture's stages on Ray Train, each a child MLflow run of
the experiment's run → the post-hoc step. Every artifact is identified by a key of what
determines it (``identity.py``), so experiments of a sweep share the real table, the synthetic
pools and FFR's stage 1. Three ways in, each a few steps of ``Experiment``:

- ``run_experiment``: the whole experiment, tracked as an experiment run;
- ``train_shared_stages``: the stages before the last, logged under a search cell's run (a
  search trains FFR's stage 1 once, before its trials start);
- ``run_trial``: a search trial — the experiment without the post-hoc step, its last stage
  reporting to Tune, its run named and tagged as a trial.

Nothing here validates the config: the job does, once (``checks.check_experiments``).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from fake2real.config import ExperimentConfig, point_label
from fake2real.data.storage import Location
from fake2real.data.table import read_info
from fake2real.prepare.pools import prepare_synthetic
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import (
    AXES_TAG, CHECKPOINT_TAG, LEVEL_TAG, STAGE, experiment_run_name, experiment_run_tags, stage_run_id_tag, stage_run_name,
    trial_run_name, trial_run_tags,
)
from fake2real.data.datasets import logged_params
from fake2real.train.methods import get_method, resolve_params
from fake2real.train.mixtures import Mixture, StagePlan, get_mixture
from fake2real.train.posthoc import PosthocSpec, run_posthoc_task
from fake2real.train.spec import Resources, StageSpec
from fake2real.train.stage import AS_TASK, IN_PROCESS, run_stage
from fake2real.train.stage_record import StageResult, finished_stage
from fake2real.prepare.workspace import Workspace, prepare_real

# Metrics an experiment run gets from its last stage and post-hoc step (its method's own too).
LOGGED = ("val/", "test/", "synthetic_test/", "probe/")


@dataclass
class ExperimentResult:
    mixture: str
    method: str
    seed: int
    run_id: str
    bias_ratio: float | None = None
    stages: list[StageResult] = field(default_factory=list)
    # Post-hoc refits (DFR), synthetic-test metrics and the G-leakage probe (train/posthoc.py).
    posthoc: dict = field(default_factory=dict)
    point: dict = field(default_factory=dict)  # its values of the sweep's axes ({} without axes)

    @property
    def metrics(self) -> dict:
        return {**self.stages[-1].metrics, **self.posthoc}


def stage_spec(config: ExperimentConfig, plan: StagePlan, tables: dict[str, tuple[str, ...]], eval_table: str,
               previous_checkpoint: str | None) -> StageSpec:
    """What one stage of the experiment's mixture computes (its identity), given the tables of
    each kind of data and the checkpoint of the stage before it."""
    train = config.train
    method = plan.method_for(train.method)
    starts_from_previous = plan.init_from_previous and previous_checkpoint is not None
    return StageSpec(
        name=plan.name,
        train_tables=tables[plan.data],
        eval_table=eval_table,
        method=method,
        method_params=resolve_params(get_method(method), train.method_params.get(method, {})),
        model=train.model,
        hparams=getattr(train, plan.hparams_section).model_dump(),
        seed=config.seed,
        init_checkpoint=previous_checkpoint if starts_from_previous else None,
        pretrained=train.pretrained_file if not starts_from_previous else None,
        keep_start=train.keep_start,
        input_size=train.input_size,
        workspace=str(Location(config.output_dir)),  # as Workspace.create names it
    )


def _draw_id(table: Location | None) -> str:
    """The id of the draw ``table`` is a view of (``plan_id`` in its table.json)."""
    return read_info(table).extra.get("plan_id") if table else "none"


@dataclass
class Experiment:
    """An experiment's tables, made (or found) before any stage trains."""

    config: ExperimentConfig
    workspace: Workspace
    real: Location
    synthetic: Location | None
    synthetic_test: Location | None
    # A draw's id names its pool and its counts ("none": no such draw).
    draw_id: str = "none"
    test_draw_id: str = "none"

    @classmethod
    def prepare(cls, config: ExperimentConfig) -> "Experiment":
        workspace = Workspace.create(config)
        mixture = get_mixture(config.train.mixture)
        real = prepare_real(config, workspace)
        synthetic = prepare_synthetic(config, workspace, mixture) if mixture.needs_synthetic else None
        test = prepare_synthetic(config, workspace, test=True) if config.generation.test_images_per_group else None
        return cls(config, workspace, real, synthetic, test, _draw_id(synthetic), _draw_id(test))

    @property
    def mixture(self) -> Mixture:
        return get_mixture(self.config.train.mixture)

    @property
    def key(self) -> str:
        """Its real data, its synthetic data (by draw), its training and its seed."""
        return f"{self.config.digest('dataset', 'train', 'seed')}-{self.draw_id}-{self.test_draw_id}"

    def params(self) -> dict:
        config = self.config
        return {
            "dataset": logged_params(config.dataset),
            "train": config.train.model_dump(),
            "seed": config.seed,
            "data.real_table": str(self.real),
            "data.synthetic_table": str(self.synthetic) if self.synthetic else "none",
            "data.synthetic_plan_id": self.draw_id,
            "data.synthetic_test_table": str(self.synthetic_test) if self.synthetic_test else "none",
        }

    def open_run(self, tracker: Tracker, name: str, parent_run_id: str | None, tags: dict) -> str:
        point = self.config.point()
        tags = {**experiment_run_tags(self.config.train.pretrained_file), **({AXES_TAG: json.dumps(point)} if point else {}), **tags}
        return tracker.run_for(self.key, name, parent_run_id, params=self.params(), tags=tags)

    def train_stages(self, tracker: Tracker, run_id: str | None, name: str, stages: tuple[StagePlan, ...],
                     in_trial: bool = False) -> list[StageResult]:
        """Train ``stages`` in order (each reused when finished), each a child run of ``run_id``.
        ``in_trial``: this process is a search trial's, holding a worker's resources (a
        single-worker stage runs here), and the mixture's last stage reports to Tune."""
        tables = {"real": (str(self.real),), "synthetic": (str(self.synthetic),), "mixed": (str(self.real), str(self.synthetic))}
        last = len(self.mixture.stages) - 1  # ``stages`` is the mixture's, or a prefix of them
        results: list[StageResult] = []
        for number, plan in enumerate(stages):
            previous = results[-1].checkpoint_uri if results else None
            spec = stage_spec(self.config, plan, tables, str(self.real), previous)
            results.append(self._train_stage(tracker, run_id, name, spec, in_trial, in_trial and number == last))
        return results

    def _train_stage(self, tracker: Tracker, run_id: str | None, name: str, spec: StageSpec, in_trial: bool, to_tune: bool) -> StageResult:
        # Experiments of a sweep run in threads (run_experiments): a stage two of them share is
        # trained by the first, the other waits here and reuses it.
        with _STAGE_LOCKS[spec.key()]:
            return self._train_stage_once(tracker, run_id, name, spec, in_trial, to_tune)

    def _train_stage_once(self, tracker: Tracker, run_id: str | None, name: str, spec: StageSpec, in_trial: bool,
                          to_tune: bool) -> StageResult:
        # A stage stored under its legacy key keeps its MLflow run too (tagged with that key until now).
        stored = finished_stage(spec, self.workspace.runs)
        stage_run = tracker.run_for(spec.key(), stage_run_name(name, spec.name), run_id, params={"stage": spec.name, **spec.__dict__},
                                    tags={LEVEL_TAG: STAGE}, former_key=stored.legacy_key if stored else None)
        print(f"[train] {name} / {spec.name} (MLflow run {stage_run})", flush=True)
        from fake2real.track.train_callback import MLflowStageCallback  # Ray Train: only when a stage trains

        with tracker.failed_on_error(stage_run):
            result = run_stage(spec, Resources.of(self.config.train), self.workspace.runs,
                               [MLflowStageCallback(tracker.uri, stage_run, spec.name)], report_to_tune=to_tune,
                               single_worker=IN_PROCESS if in_trial else AS_TASK)
        if result.reused:
            print(f"[train] {name} / {spec.name}: finished earlier, reused", flush=True)
        tracker.set_tag(stage_run, CHECKPOINT_TAG, result.checkpoint_uri)
        if run_id:
            tracker.set_tag(run_id, stage_run_id_tag(spec.name), stage_run)
        tracker.finish(stage_run)
        return result

    def posthoc(self, last: StageResult) -> dict:
        """DFR's refit, synthetic-test metrics and the probe on the selected model ({} if none applies)."""
        train = self.config.train
        if not (self.synthetic_test or get_method(train.method).base_method):
            return {}
        test = str(self.synthetic_test) if self.synthetic_test else None
        step = PosthocSpec(last.checkpoint_uri, train.model, str(self.real), test, train.method, self.config.seed, train.input_size,
                           str(self.workspace.root))
        return run_posthoc_task(step, self.workspace.runs, train.use_gpu)

    def close_run(self, tracker: Tracker, result: ExperimentResult) -> ExperimentResult:
        logged = LOGGED + (f"{self.config.train.method}/",)
        tracker.log_metrics(result.run_id, {k: v for k, v in result.metrics.items() if k.startswith(logged)})
        tracker.set_tag(result.run_id, CHECKPOINT_TAG, result.stages[-1].checkpoint_uri)
        tracker.finish(result.run_id)
        return result

    def result(self, run_id: str, stages: list[StageResult]) -> ExperimentResult:
        config = self.config
        return ExperimentResult(config.train.mixture, config.train.method, config.seed, run_id, config.dataset.bias_ratio, stages,
                                point=config.point())


def _name(config: ExperimentConfig) -> str:
    return experiment_run_name(config.dataset.bias_ratio, config.train.mixture, config.train.method, config.seed,
                               point_label(config.point()))


# A stage's key → the lock its training holds; tables are written by one thread at a time.
_STAGE_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_PREPARE_LOCK = threading.Lock()


def _prepare(config: ExperimentConfig) -> Experiment:
    with _PREPARE_LOCK:
        return Experiment.prepare(config)


def run_experiment(config: ExperimentConfig, tracker: Tracker, parent_run_id: str | None = None) -> ExperimentResult:
    """The experiment: its stages (each reused when finished), then the post-hoc step."""
    experiment = _prepare(config)
    name = _name(config)
    run_id = experiment.open_run(tracker, name, parent_run_id, tags={})
    with tracker.failed_on_error(run_id):
        result = experiment.result(run_id, experiment.train_stages(tracker, run_id, name, experiment.mixture.stages))
        result.posthoc = experiment.posthoc(result.stages[-1])
    return experiment.close_run(tracker, result)


def train_shared_stages(config: ExperimentConfig, tracker: Tracker, cell_run_id: str) -> list[StageResult]:
    """The stages before the mixture's last (FFR's stage 1), logged under the search cell's run:
    trained once here, every trial of the cell reuses them by key."""
    experiment = _prepare(config)
    return experiment.train_stages(tracker, cell_run_id, _name(config), experiment.mixture.stages[:-1])


def run_trial(config: ExperimentConfig, tracker: Tracker, cell_run_id: str, trial_id: str) -> ExperimentResult:
    """A search trial, in its Tune trial's process: the experiment without its post-hoc step, its
    last stage reporting to Tune."""
    experiment = _prepare(config)
    train = config.train
    name = trial_run_name(config.dataset.bias_ratio, train.mixture, train.method, trial_id, point_label(config.point()))
    run_id = experiment.open_run(tracker, name, cell_run_id, tags=trial_run_tags(trial_id))
    with tracker.failed_on_error(run_id):
        stages = experiment.train_stages(tracker, run_id, name, experiment.mixture.stages, in_trial=True)
    return experiment.close_run(tracker, experiment.result(run_id, stages))


def run_experiments(configs: list[ExperimentConfig], tracker: Tracker, parent_run_id: str | None, at_once: int,
                    finished: Callable[[list[ExperimentResult], ExperimentResult], None] = lambda done, latest: None,
                    ) -> list[ExperimentResult]:
    """Independent experiments, ``at_once`` at a time (threads of this driver, each waiting on its
    own trainers), started in the order given; ``finished`` gets the results so far, in that
    order, and the latest, after each one ends. Experiments that share a stage train it once (``_train_stage``)."""
    results: dict[int, ExperimentResult] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, at_once), thread_name_prefix="experiment")
    running = {pool.submit(run_experiment, config, tracker, parent_run_id): index for index, config in enumerate(configs)}
    try:
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index = running.pop(future)
                results[index] = future.result()  # the first error ends the sweep
                finished([results[i] for i in sorted(results)], results[index])
    finally:
        # After an error, experiments not started never start; those running end with the driver.
        pool.shutdown(wait=not running, cancel_futures=True)
    return [results[i] for i in sorted(results)]
