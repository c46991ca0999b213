"""The offline real benchmark at tiny size on real Ray and MLflow: Fashion-MNIST photos from
Debian's package, ImageNet EfficientNet-Lite0, a diffusion generator trained for a few steps on
the held-apart images, pools generated from it by Ray Data, FFR and USB trained on them; and the
generator's training resumed from its checkpoint after its driver died."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from fake2real.config import build_config
from fake2real.data.table import read_info, read_table
from fake2real.prepare.generators import generator_job
from fake2real.generate.generator_training import GeneratorResources, train_generator
from fake2real.run.sweep import run_sweep
from fake2real.track.names import CHECKPOINT_TAG, GENERATOR, LEVEL_TAG
from fake2real.prepare.workspace import Workspace, prepare_held_apart
from helpers import REPO, run_job

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.fixture(autouse=True)
def fashion_installed():
    assert FASHION.is_file(), "Debian's dataset-fashion-mnist is not installed: the README's test command installs it"

TINY = {
    "dataset": {"fashion_mnist": {"train_per_group": 30, "val_per_group": 5, "test_per_group": 6}},
    "generation": {"test_images_per_group": 4, "batch_size": 16, "cpus_per_actor": 1,
                   "group_diffusion": {"steps": 2, "training": {"steps": 10, "checkpoint_every": 5, "batch_size": 16, "channels": [8, 16],
                                                                "cpus_per_worker": 1, "quality_images_per_group": 4,
                                                                "quality_reader_epochs": 1}}},
    "train": {"input_size": 32, "cpus_per_worker": 1, **{s: {"epochs": 1, "batch_size": 16} for s in ("real", "synthetic", "asb")}},
    "sweep": {"mixtures": ["usb", "ffr"], "methods": ["erm"], "seeds": [0]},
}


def _config(tmp_path, **more):
    overrides = {**TINY, "output_dir": str(tmp_path / "out"), "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}, **more}
    return build_config(REPO / "configs" / "fashion" / "r0.99.yaml", overrides=overrides)


def test_the_benchmark_end_to_end_at_tiny_size(ray_connected, tmp_path):
    config = _config(tmp_path)
    sweep = run_sweep(config)
    assert [(r.mixture, r.method) for r in sweep.results] == [("usb", "erm"), ("ffr", "erm")]
    for result in sweep.results:
        assert 0.0 <= result.metrics["test/worst_group_accuracy"] <= result.metrics["test/balanced_accuracy"] <= 1.0
        assert 0.5 <= result.metrics["probe/g_leakage_auroc"] <= 1.0 or result.metrics["probe/g_leakage_auroc"] != result.metrics["probe/g_leakage_auroc"]

    data = tmp_path / "out" / "data"
    real = read_info(next(data.glob("real-fashion_mnist-*")))
    assert real.group_counts["train"] == {"y0_b0": 30, "y0_b1": 1, "y1_b0": 1, "y1_b1": 30}  # ceil(30 · 0.01 / 0.99) = 1
    # The generator learnt from held-apart images only; the pools hold what it made.
    held = read_table(next(data.glob("held-apart-fashion_mnist-*")), columns=["id"])["id"].to_pylist()
    real_ids = read_table(next(data.glob("real-fashion_mnist-*")), columns=["id"])["id"].to_pylist()
    assert held and not set(held) & set(real_ids)
    pool = read_table(next(p for p in data.glob("pool-fashion_mnist-*")), columns=["generator", "steps", "g"])
    assert set(pool["generator"].to_pylist()) == {f"group_diffusion:{generator_job(config).spec.run_name} DDIM eta=0.0"}
    assert set(pool["steps"].to_pylist()) == {2} and set(pool["g"].to_pylist()) == {1}

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([sweep.experiment_id], filter_string=f"tags.`{LEVEL_TAG}` = '{GENERATOR}'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    generator = runs[0]
    assert [m.step for m in client.get_metric_history(generator.info.run_id, "train/loss")] == [5, 10]
    assert {a.path for a in client.list_artifacts(generator.info.run_id, "samples")} == {"samples/step_000005.png", "samples/step_000010.png"}
    quality = generator.data.metrics
    for key in ("quality/generated/y_accuracy/group/y1_b0", "quality/generated/b_accuracy", "quality/real/y_accuracy", "quality/g_leakage_auroc"):
        assert 0.0 <= quality[key] <= 1.0
    assert (Path(generator.data.tags[CHECKPOINT_TAG]) / "model_index.json").is_file()

    # The generator's job finds it by its key: nothing is trained again, its judged quality is printed.
    overrides = [f"output_dir={tmp_path / 'out'}", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"] + [
        f"{key}={json.dumps(value)}" for key, value in _flat(TINY).items()]
    job = run_job("train_generator.py", "--config", str(REPO / "configs" / "fashion" / "r0.99.yaml"), *overrides, env=ray_connected.env)
    assert job.returncode == 0, job.stderr[-2000:]
    assert f"generator: {generator.data.tags[CHECKPOINT_TAG]}" in job.stdout and "| y1_b0 |" in job.stdout
    assert "[generator] step" not in job.stdout + job.stderr
    assert len(client.search_runs([sweep.experiment_id], filter_string=f"tags.`{LEVEL_TAG}` = '{GENERATOR}'")) == 1


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def test_generator_training_resumes_where_it_stopped(ray_connected, tmp_path):
    import ray.train

    from fake2real.generate.group_pipeline import load_pipeline
    from fake2real.track.train_callback import ReportLog

    class StopAfterFirstReport(ray.train.UserCallback):  # pickled by value: the controller cannot import tests/
        def after_report(self, run_context, metrics, checkpoint):
            raise RuntimeError("the driver died after step 5")

    config = _config(tmp_path)
    job = generator_job(config)
    table = prepare_held_apart(config, Workspace.create(config))
    spec = replace(job.spec, table=str(table))
    resources = GeneratorResources(cpus_per_worker=1, checkpoint_every=5)
    storage = str(tmp_path / "runs")
    with pytest.raises(Exception, match="the driver died after step 5"):
        train_generator(spec, resources, storage, [StopAfterFirstReport()])
    resumed = train_generator(spec, resources, storage, [ReportLog(tmp_path / "resumed.jsonl")])
    whole = train_generator(spec, resources, str(tmp_path / "whole"), [ReportLog(tmp_path / "whole.jsonl")])

    def steps(log):
        return [json.loads(line)["step"] for line in (tmp_path / log).read_text().splitlines()]

    assert steps("resumed.jsonl") == [10]  # steps 1–5 were not trained again
    assert steps("whole.jsonl") == [5, 10]
    first, second = (load_pipeline(r["pipeline_uri"], "cpu", "test").unet.state_dict() for r in (resumed, whole))
    assert all(torch.allclose(first[k], second[k], atol=1e-6) for k in first)  # the resumed run drew what the whole one did
