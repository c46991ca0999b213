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
from fake2real.runtime import init_ray
from fake2real.synthetic import check_generation, prepare_synthetic
from fake2real.track.mlflow_runs import Tracker, resolve_uri
from fake2real.track.train_callback import MLflowStageCallback
from fake2real.train.methods import get_method, resolve_params
from fake2real.train.mixtures import get_mixture
from fake2real.train.stage import Resources, StageResult, StageSpec, run_stage
from fake2real.workspace import Workspace, prepare_real


@dataclass
class ExperimentResult:
    mixture: str
    method: str
    seed: int
    run_id: str
    stages: list[StageResult] = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        return self.stages[-1].metrics


def validate(config: ExperimentConfig, mixtures: list[str], methods: list[str]) -> None:
    """Name-level checks that must fail before any Ray work starts."""
    get_dataset(config.dataset.name)
    for name in mixtures:
        get_mixture(name)
    for name in methods:
        resolve_params(get_method(name), config.train.method_params.get(name, {}))
    for name in config.train.method_params:
        get_method(name)
    check_generation(config)


def run_experiment(config: ExperimentConfig, tracker: Tracker, parent_run_id: str | None = None) -> ExperimentResult:
    workspace = Workspace.create(config)
    validate(config, [config.train.mixture], [config.train.method])
    real = prepare_real(config, workspace)
    mixture = get_mixture(config.train.mixture)
    synthetic = prepare_synthetic(config, workspace) if mixture.needs_synthetic else None
    train = config.train

    plan_id = read_info(synthetic).extra.get("plan_id") if synthetic else "none"
    # The experiment is its real data, its synthetic data (by plan), its training and its seed.
    key = f"{config.digest('dataset', 'train', 'seed')}-{plan_id}"
    name = f"{train.mixture}-{train.method}-seed{config.seed}"
    params = {
        "dataset": config.dataset.model_dump(),
        "train": train.model_dump(),
        "seed": config.seed,
        "data.real_table": str(real),
        "data.synthetic_table": str(synthetic) if synthetic else "none",
        "data.synthetic_plan_id": plan_id,
    }
    run_id = tracker.run_for(key, name, parent_run_id, params=params)
    result = ExperimentResult(train.mixture, train.method, config.seed, run_id)
    resources = Resources(train.num_workers, train.cpus_per_worker, train.use_gpu)
    previous: StageResult | None = None
    try:
        for plan in mixture.stages:
            method = plan.method or train.method
            spec = StageSpec(
                name=plan.name,
                train_table=str(synthetic if plan.data == "synthetic" else real),
                eval_table=str(real),
                method=method,
                method_params=resolve_params(get_method(method), train.method_params.get(method, {})),
                model=train.model,
                hparams=(train.synthetic if plan.data == "synthetic" else train.real).model_dump(),
                seed=config.seed,
                init_checkpoint=previous.checkpoint_uri if plan.init_from_previous and previous else None,
            )
            stage_run = tracker.run_for(spec.key(), plan.name, run_id, params={"stage": plan.name, **spec.__dict__})
            print(f"[train] {name} / {plan.name} (MLflow run {stage_run})", flush=True)
            try:
                previous = run_stage(spec, resources, workspace.runs, [MLflowStageCallback(tracker.uri, stage_run, plan.name)])
            except BaseException:
                tracker.finish(stage_run, "FAILED")
                raise
            if previous.reused:
                print(f"[train] {name} / {plan.name}: finished earlier, reused", flush=True)
            tracker.client.set_tag(stage_run, "checkpoint_uri", previous.checkpoint_uri)
            tracker.client.set_tag(run_id, f"{plan.name}.run_id", stage_run)
            tracker.finish(stage_run)
            result.stages.append(previous)
    except BaseException:
        tracker.finish(run_id, "FAILED")
        raise
    tracker.log_metrics(run_id, {k: v for k, v in result.metrics.items() if k.startswith(("val/", "test/"))})
    tracker.client.set_tag(run_id, "checkpoint_uri", result.stages[-1].checkpoint_uri)
    tracker.finish(run_id)
    return result


def run_single(config: ExperimentConfig) -> str:
    """``jobs/train.py``: one experiment, tracked; returns its summary."""
    validate(config, [config.train.mixture], [config.train.method])
    workspace = Workspace.create(config)
    tracker = Tracker(resolve_uri(config.tracking.uri), config.tracking.experiment, workspace.root / "mlartifacts")
    prepare_real(config, workspace)
    init_ray()
    result = run_experiment(config, tracker)
    metrics = result.metrics
    lines = [f"{result.mixture} / {result.method} / seed {result.seed} (MLflow run {result.run_id})"]
    lines += [f"  {k}: {metrics[k]:.4f}" for k in sorted(metrics) if k.startswith("test/") and "/group/" not in k]
    lines += [f"  checkpoint: {result.stages[-1].checkpoint_uri}"]
    return "\n".join(lines)
