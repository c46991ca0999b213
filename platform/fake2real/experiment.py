"""One experiment — (dataset, mixture, method, seed) — from data to selected model.

Real table → (synthetic plan → generation) → the mixture's stages on Ray Train, each a child
MLflow run of the experiment's run. Every artifact is identified by a hash of what determines
it, so experiments of a sweep share the real table, the synthetic table and FFR's stage 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fake2real.config import ExperimentConfig
from fake2real.data.datasets import get_dataset
from fake2real.data.table import read_info
from fake2real.runtime import check_tracking_for_cluster, init_ray, require_resources
from fake2real.errors import ConfigError
from fake2real.pools import prepare_synthetic
from fake2real.synthetic import check_generation, needs_generation
from fake2real.track.mlflow_runs import Tracker, resolve_uri
from fake2real.track.names import (
    CHECKPOINT_TAG, LEVEL_TAG, STAGE, experiment_run_name, experiment_run_tags, stage_run_id_tag, stage_run_name,
)
from fake2real.track.params import dataset_params
from fake2real.track.train_callback import MLflowStageCallback
from fake2real.train.methods import get_method, resolve_params
from fake2real.train.mixtures import get_mixture
from fake2real.train.models import build_model
from fake2real.train.posthoc import PosthocSpec, run_posthoc_task
from fake2real.train.stage import Resources, StageResult, StageSpec, run_stage
from fake2real.workspace import Workspace, prepare_real


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

    @property
    def metrics(self) -> dict:
        return {**self.stages[-1].metrics, **self.posthoc}


def training_method(method: str) -> str:
    """The method a stage trains with: a post-hoc method (DFR) trains as its base method."""
    return get_method(method).base_method or method


def stage_method(plan, method: str) -> str:
    """What a mixture's stage trains: its own fixed method (e.g. ffr_reversed's last) or the experiment's."""
    return plan.method or training_method(method)


def stage_spec(config: ExperimentConfig, plan, tables: dict[str, tuple[str, ...]], eval_table: str, previous_checkpoint: str | None) -> StageSpec:
    """What one stage of the experiment's mixture computes (its identity), given the tables of
    each kind of data and the checkpoint of the stage before it."""
    train = config.train
    method = stage_method(plan, train.method)
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
    )


def validate(config: ExperimentConfig, mixtures: list[str], methods: list[str]) -> None:
    """Name-level checks that must fail before any Ray work starts."""
    get_dataset(config.dataset.name)
    for name in mixtures:
        get_mixture(name)
    for name in methods:
        resolve_params(get_method(name), config.train.method_params.get(name, {}))
    for name in config.train.method_params:
        get_method(name)
    if needs_generation(config, mixtures):
        check_generation(config)
    if config.train.pretrained_file:  # the file exists, is a state dict, and fits the backbone
        build_model(config.train.model, 2, config.train.pretrained_file)
    gen = config.generation
    for name in mixtures:
        mixture = get_mixture(name)
        # A text-to-image model told no bias words picks B itself: its images have no group labels.
        unlabelled = gen.prompts is not None and not (gen.bias_words and mixture.bias_words)
        for stage in mixture.stages:
            for method in methods:
                trained = stage_method(stage, method)
                if unlabelled and stage.data != "real" and get_method(trained).uses_groups:
                    raise ConfigError(
                        f"config: method '{trained}' needs group labels, but mixture '{name}' trains its "
                        f"'{stage.name}' stage on images generated without bias words (their bias is unknown)"
                    )


def run_experiment(
    config: ExperimentConfig,
    tracker: Tracker,
    parent_run_id: str | None = None,
    last_stage_callbacks: tuple = (),
    prefix_only: bool = False,
    posthoc: bool = True,
    run_name: str | None = None,
    run_tags: dict | None = None,
) -> ExperimentResult:
    """Train the mixture's stages (each reused when finished) and the post-hoc step.

    ``last_stage_callbacks`` join the last stage's trainer (a search trial reports to Tune);
    ``prefix_only`` trains every stage but the last (a search trains FFR's stage 1 once, before
    its trials start); ``posthoc=False`` skips DFR refits, synthetic-test metrics and the probe;
    ``run_name`` / ``run_tags`` name and tag a new experiment run (a search trial's: its level).
    """
    workspace = Workspace.create(config)
    validate(config, [config.train.mixture], [config.train.method])
    real = prepare_real(config, workspace)
    mixture = get_mixture(config.train.mixture)
    synthetic = prepare_synthetic(config, workspace, mixture) if mixture.needs_synthetic else None
    synthetic_test = prepare_synthetic(config, workspace, test=True) if config.generation.test_images_per_group else None
    train = config.train

    # A draw's id names its pool and its counts (``plan_id`` in the view's table.json).
    draw_id = read_info(synthetic).extra.get("plan_id") if synthetic else "none"
    test_draw_id = read_info(synthetic_test).extra.get("plan_id") if synthetic_test else "none"
    # The experiment is its real data, its synthetic data (by draw), its training and its seed.
    key = f"{config.digest('dataset', 'train', 'seed')}-{draw_id}-{test_draw_id}"
    name = run_name or experiment_run_name(config.dataset.bias_ratio, train.mixture, train.method, config.seed)
    params = {
        "dataset": dataset_params(config.dataset),
        "train": train.model_dump(),
        "seed": config.seed,
        "data.real_table": str(real),
        "data.synthetic_table": str(synthetic) if synthetic else "none",
        "data.synthetic_plan_id": draw_id,
        "data.synthetic_test_table": str(synthetic_test) if synthetic_test else "none",
    }
    if prefix_only:  # shared stages are logged under the parent (a sweep cell), not as an experiment
        run_id = parent_run_id
    else:
        run_id = tracker.run_for(key, name, parent_run_id, params=params, tags={**experiment_run_tags(train.pretrained_file), **(run_tags or {})})
    result = ExperimentResult(train.mixture, train.method, config.seed, run_id, config.dataset.bias_ratio)
    tables = {"real": (str(real),), "synthetic": (str(synthetic),), "mixed": (str(real), str(synthetic))}
    resources = Resources.of(train)
    previous: StageResult | None = None
    stages = mixture.stages[:-1] if prefix_only else mixture.stages
    try:
        for number, plan in enumerate(stages, 1):
            spec = stage_spec(config, plan, tables, str(real), previous.checkpoint_uri if previous else None)
            stage_run = tracker.run_for(
                spec.key(), stage_run_name(name, plan.name), run_id, params={"stage": plan.name, **spec.__dict__}, tags={LEVEL_TAG: STAGE}
            )
            print(f"[train] {name} / {plan.name} (MLflow run {stage_run})", flush=True)
            try:
                callbacks = [MLflowStageCallback(tracker.uri, stage_run, plan.name)]
                if number == len(mixture.stages):
                    callbacks += list(last_stage_callbacks)
                previous = run_stage(spec, resources, workspace.runs, callbacks)
            except BaseException:
                tracker.finish(stage_run, "FAILED")
                raise
            if previous.reused:
                print(f"[train] {name} / {plan.name}: finished earlier, reused", flush=True)
            tracker.client.set_tag(stage_run, CHECKPOINT_TAG, previous.checkpoint_uri)
            if run_id:
                tracker.client.set_tag(run_id, stage_run_id_tag(plan.name), stage_run)
            tracker.finish(stage_run)
            result.stages.append(previous)
        if prefix_only:
            return result
        if posthoc and (synthetic_test or get_method(train.method).base_method):
            step = PosthocSpec(
                previous.checkpoint_uri, train.model, str(real), str(synthetic_test) if synthetic_test else None, train.method, config.seed
            )
            result.posthoc = run_posthoc_task(step, workspace.runs, train.use_gpu)
    except BaseException:
        if not prefix_only:
            tracker.finish(run_id, "FAILED")
        raise
    logged = ("val/", "test/", "synthetic_test/", "probe/", f"{train.method}/")
    tracker.log_metrics(run_id, {k: v for k, v in result.metrics.items() if k.startswith(logged)})
    tracker.client.set_tag(run_id, CHECKPOINT_TAG, result.stages[-1].checkpoint_uri)
    tracker.finish(run_id)
    return result


def check_cluster(config: ExperimentConfig, tracking_uri: str) -> None:
    """Once Ray is up, before any stage: what this cluster can never give is refused in one line."""
    resources = Resources.of(config.train)
    require_resources(resources.request(), resources.describe(), config.train.resource_wait_s)
    check_tracking_for_cluster(tracking_uri)


def run_single(config: ExperimentConfig) -> str:
    """``jobs/train.py``: one experiment, tracked; returns its summary."""
    validate(config, [config.train.mixture], [config.train.method])
    workspace = Workspace.create(config)
    tracker = Tracker(resolve_uri(config.tracking.uri), config.tracking.experiment, workspace.artifacts)
    prepare_real(config, workspace)
    init_ray()
    check_cluster(config, tracker.uri)
    result = run_experiment(config, tracker)
    metrics = result.metrics
    lines = [f"{result.mixture} / {result.method} / seed {result.seed} (MLflow run {result.run_id})"]
    shown = ("test/", "synthetic_test/", "probe/", f"{result.method}/C")
    lines += [f"  {k}: {metrics[k]:.4f}" for k in sorted(metrics) if k.startswith(shown) and "/group/" not in k]
    lines += [f"  checkpoint: {result.stages[-1].checkpoint_uri}"]
    return "\n".join(lines)
