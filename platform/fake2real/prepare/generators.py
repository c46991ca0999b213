"""The generator the platform trains before it generates (a backend's ``trained_generator``, e.g.
``generation.group_diffusion`` without a ``model``): its held-apart images, its training on Ray
Train, its measured quality and its MLflow run — once, then found again by its key.

The MLflow run (level ``generator``, named ``generator-<key>``) holds the training loss per step,
the grids of samples (``samples/``), the quality metrics (``generate/generator_quality.py``) and
the trained folder's URI as the ``checkpoint_uri`` tag. The done marker ``generator.json`` holds
the same, so a pool made later names exactly the generator that was judged.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from fake2real.config import ExperimentConfig
from fake2real.errors import redact
from fake2real.generate.backends import backend_of, settings_of
from fake2real.generate.generator_training import (
    SAMPLES_FILE, GeneratorJob, finished_generator, mark_generator, result_payload, train_generator,
)
from fake2real.runtime import init_ray
from fake2real.track.mlflow_runs import Tracker, resolve_uri
from fake2real.track.names import CHECKPOINT_TAG, GENERATOR, LEVEL_TAG
from fake2real.prepare.workspace import Workspace, prepare_held_apart

# Experiments of a sweep prepare their data in threads: one trains the generator, the others wait.
_LOCK = threading.Lock()
QUALITY_SHOWN = ("quality/real/y_accuracy", "quality/real/b_accuracy", "quality/generated/y_accuracy",
                 "quality/generated/b_accuracy", "quality/g_leakage_auroc")


def generator_job(config: ExperimentConfig) -> GeneratorJob | None:
    return backend_of(config).trained_generator(settings_of(config), config.dataset, config.train.max_failures)


def ensure_generator(config: ExperimentConfig, workspace: Workspace) -> dict:
    """The trained generator of ``config`` (its done marker's payload: ``pipeline_uri``,
    ``metrics``, ``quality``), trained and judged first when it is not there yet."""
    job = generator_job(config)
    assert job is not None, "this backend trains no generator"
    with _LOCK:
        done = finished_generator(job.spec, workspace.runs)
        if done is not None:
            return done
        table = prepare_held_apart(config, workspace)
        job = replace(job, spec=replace(job.spec, table=str(table)))
        return _train_and_judge(config, workspace, job)


def _train_and_judge(config: ExperimentConfig, workspace: Workspace, job: GeneratorJob) -> dict:
    spec = job.spec
    init_ray()
    tracker = Tracker(resolve_uri(config.tracking.uri), config.tracking.experiment, workspace.artifacts)
    params = {"training": spec.training, "data": spec.data, "class_names": list(spec.class_names),
              "bias_names": list(spec.bias_names), "table": spec.table}
    run = tracker.run_for(spec.key(), spec.run_name, params=params, tags={LEVEL_TAG: GENERATOR})
    print(f"[generator] {spec.run_name}: {spec.training['steps']} steps on {redact(spec.table)} (MLflow run {run})", flush=True)
    with tracker.failed_on_error(run):
        from fake2real.track.train_callback import MLflowGeneratorCallback  # Ray Train: only to train one

        callback = MLflowGeneratorCallback(tracker.uri, run, spec.training["steps"], SAMPLES_FILE)
        trained = train_generator(spec, job.resources, workspace.runs, [callback])
        print(f"[generator] judging it: {job.quality_images_per_group} images per group", flush=True)
        quality = _quality_task(trained["pipeline_uri"], job)
        tracker.log_metrics(run, quality)
        tracker.set_tag(run, CHECKPOINT_TAG, trained["pipeline_uri"])
        payload = result_payload(spec, trained, quality)
        mark_generator(spec, workspace.runs, payload)
    tracker.finish(run)
    print("[generator] " + ", ".join(f"{name} {quality[name]:.3f}" for name in QUALITY_SHOWN), flush=True)
    return payload


def _judge(pipeline_uri: str, job: GeneratorJob, device: str) -> dict:
    from fake2real.data.storage import local_folder
    from fake2real.generate.generator_quality import measure_quality

    with local_folder(pipeline_uri) as folder:
        return measure_quality(str(folder), job.spec.table, job.quality_images_per_group, job.sample_steps, job.eta,
                               job.spec.training["seed"], job.quality_reader_epochs, device)


def _quality_task(pipeline_uri: str, job: GeneratorJob) -> dict:
    """``measure_quality`` as a Ray task with the training worker's resources."""
    import ray

    gpu = job.resources.use_gpu
    task = ray.remote(num_cpus=job.resources.cpus_per_worker, num_gpus=1 if gpu else 0)(_judge)
    return ray.get(task.remote(pipeline_uri, job, "cuda" if gpu else "cpu"))
