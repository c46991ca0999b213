"""A config's local paths are made absolute once, in the driver (``local_paths.resolve_paths``,
called by ``cli.load``): a search trial runs in a folder of its own, where a relative
``output_dir`` was another workspace. URIs, keywords and absolute paths stay as written, and so
do the keys of jobs that were stored before."""

from __future__ import annotations

import os

import pytest

from fake2real import cli
from fake2real.config import ExperimentConfig, build_config
from fake2real.data.storage import Location
from fake2real.local_paths import LOCAL_PATHS, resolve_paths

RELATIVE = {
    "output_dir": "out",
    "dataset.name": "folder", "dataset.root": "data", "dataset.bias_ratio": None,
    "generation.backend": "folder", "generation.folder.root": "gen/images", "generation.output": "pool",
    "generation.real_table": "tables/real", "generation.prompts": "prompts/mine.yaml",
    "generation.diffusers.model": "sd", "generation.group_diffusion.model": "generator",
    "train.pretrained": "weights/resnet.pth", "train.loader.stream_dir": "stream", "tracking.uri": "sqlite:///runs/mlflow.db?mode=rw",
}


def overrides(values: dict) -> list[str]:
    return [f"{key}={'null' if value is None else value}" for key, value in values.items()]


def value(config: ExperimentConfig, dotted: str):
    node = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sd").mkdir()  # a diffusers folder here; elsewhere the name is a model id
    return tmp_path


def test_relative_paths_become_absolute_against_the_drivers_folder(here):
    config = build_config(overrides=overrides(RELATIVE))
    resolved = resolve_paths(config)
    for key in LOCAL_PATHS.keys() - {"dataset.table"}:  # a finished table is used without a root
        assert value(resolved, key) == str(here / RELATIVE[key]), key
    table = resolve_paths(build_config(overrides=["dataset.table=tables/real", "dataset.bias_ratio=null"]))
    assert table.dataset.table == str(here / "tables/real")
    assert resolved.tracking.uri == f"sqlite:///{here}/runs/mlflow.db?mode=rw"
    # What a trial receives (search._trial validates the cell's dump) holds them too.
    trial = ExperimentConfig.model_validate(resolved.model_dump(mode="json"))
    assert trial.output_dir == str(here / "out") and trial.generation.folder.root == str(here / "gen/images")


def test_a_second_folder_changes_nothing(here, tmp_path_factory, monkeypatch):
    resolved = resolve_paths(build_config(overrides=overrides(RELATIVE)))
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    again = resolve_paths(resolved)
    assert again is resolved  # nothing relative is left
    assert again.output_dir == str(here / "out") and again.dataset.root == str(here / "data")
    assert again.digest() == resolved.digest() and again.digest("dataset", "generation", "train", "seed") == resolved.digest(
        "dataset", "generation", "train", "seed")


def test_uris_keywords_and_absolute_paths_are_left_as_written(here):
    kept = {
        "output_dir": "s3://bucket/run", "dataset.name": "folder", "dataset.root": "file:///srv/data", "dataset.bias_ratio": None,
        "generation.backend": "folder", "generation.folder.root": "gs://bucket/gen", "generation.output": "/abs/pool/../pool",
        "generation.prompts": "celeba", "generation.diffusers.model": "CompVis/stable-diffusion-v1-4",
        "generation.group_diffusion.model": "s3://bucket/generator", "train.pretrained": "imagenet",
        "tracking.uri": "http://127.0.0.1:5000",
    }
    config = build_config(overrides=overrides(kept))
    assert resolve_paths(config) is config
    for pretrained in ("none", "/weights/resnet50-11ad3fa6.pth"):
        config = build_config(overrides=["output_dir=/srv/out", f"train.pretrained={pretrained}", "tracking.uri=sqlite:////srv/mlflow.db"])
        assert resolve_paths(config) is config
    assert resolve_paths(build_config(overrides={"tracking": {"uri": "sqlite:///:memory:"}})).tracking.uri == "sqlite:///:memory:"


def test_axis_values_that_are_local_paths_are_resolved(here):
    config = build_config(overrides=["sweep.axes={train.pretrained: [weights/a.pth, imagenet], dataset.shapes.semantic_gap: [0.1, 0.5]}"])
    resolved = resolve_paths(config)
    assert resolved.sweep.axes == {"train.pretrained": [str(here / "weights/a.pth"), "imagenet"], "dataset.shapes.semantic_gap": [0.1, 0.5]}


def test_keys_of_stored_jobs_do_not_change(here):
    # The default output_dir is relative: resolved, the sweep's key keeps it as written, and no
    # other key holds it (a stage's tables were absolute already: data/storage.Location).
    default = build_config()
    resolved = resolve_paths(default)
    assert resolved.output_dir == str(here / "outputs") == str(Location("outputs"))
    assert resolved.digest() == default.digest() == "26a9977423c148e1"  # pinned in test_config.py
    for sections in (("dataset",), ("dataset", "train", "seed"), ("dataset", "generation", "train", "seed")):
        assert resolved.digest(*sections) == default.digest(*sections)
    tracked = build_config(overrides=["tracking.uri=sqlite:///mlflow.db"])
    assert resolve_paths(tracked).digest() == tracked.digest()
    # Written absolute: the same config, the same keys.
    absolute = build_config(overrides=[f"output_dir={here / 'out'}", f"train.pretrained={here / 'w.pth'}"])
    assert resolve_paths(absolute) is absolute


def test_every_job_loads_its_config_resolved(here):
    config = cli.load(cli.parse("test", ["--preset", "smoke", "output_dir=out", "tracking.uri=sqlite:///m.db"]))
    assert config.output_dir == os.path.join(here, "out") and config.tracking.uri == f"sqlite:///{here}/m.db"
    assert config.digest() == build_config(overrides=["output_dir=out", "tracking.uri=sqlite:///m.db"], base=cli.preset("smoke")).digest()
