"""Results that move with their folder: a stage is keyed by the locations inside its workspace
relative to it, so a workspace moved, copied or reached from another checkout keeps every stage;
a workspace written when keys held absolute locations is still found, where it is and moved, and
adopted (docs/design.md §5). No Ray starts: every stage here is found, never trained."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, replace

import numpy as np
import pyarrow.fs
import pytest

from fake2real import identity
from fake2real.config import build_config
from fake2real.data.markers import write_marker
from fake2real.data.storage import Location, get_bytes, put_bytes, register_filesystem
from fake2real.run.experiment import stage_spec
from fake2real.generate.generator_training import GeneratorSpec, finished_generator
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import KEY_TAG
from fake2real.train import posthoc
from fake2real.train.mixtures import get_mixture
from fake2real.train.spec import ADDED_LATER, Resources, StageSpec
from fake2real.train.stage import run_stage
from fake2real.train.stage_record import RESULT_FILE, finished_stage

CHECKPOINT = "checkpoint_2026-01-01_00-00-00.000000"


def _ffr_specs(config, previous: str | None = None) -> tuple[StageSpec, StageSpec]:
    """FFR's two stages on the workspace's tables, stage 2 from ``previous`` (else stage 1's run's checkpoint)."""
    root = config.output_dir
    tables = {"synthetic": (f"{root}/data/synthetic-shapes-abc",), "real": (f"{root}/data/real-shapes-def",)}
    stage1_plan, stage2_plan = get_mixture("ffr").stages
    stage1 = stage_spec(config, stage1_plan, tables, tables["real"][0], None)
    previous = previous or f"{root}/runs/{stage1.run_name}/{CHECKPOINT}"
    return stage1, stage_spec(config, stage2_plan, tables, tables["real"][0], previous)


def _old_key(spec: StageSpec) -> str:
    """The key stage.py gave before keys were relative: every field as it is, locations absolute."""
    return identity.key({k: v for k, v in asdict(spec).items() if k != "workspace"}, ADDED_LATER)


def test_a_stage_keeps_its_key_wherever_its_workspace_is(tmp_path):
    here = build_config(overrides={"output_dir": str(tmp_path / "a" / "outputs"), "train": {"mixture": "ffr"}})
    there = build_config(overrides={"output_dir": str(tmp_path / "b" / "elsewhere"), "train": {"mixture": "ffr"}})
    assert [s.key() for s in _ffr_specs(here)] == [s.key() for s in _ffr_specs(there)]
    # A location outside the workspace (the user's weights, a table elsewhere) is keyed as it is.
    outside = replace(_ffr_specs(here)[0], pretrained="/data/weights.pth")
    assert outside.key() != replace(outside, pretrained="/other/weights.pth").key()
    assert outside.key() != _ffr_specs(here)[0].key()


def test_the_legacy_key_is_the_key_stored_before():
    """Pinned: the keys the code before this change gave these stages (absolute locations)."""
    hparams = build_config().train.real.model_dump()
    stage1 = StageSpec("stage1_synthetic", ("/old/out/data/synthetic-shapes-abc",), "/old/out/data/real-shapes-def", "erm", {},
                       "small_cnn", hparams, 0)
    stage2 = StageSpec("stage2_real", ("/old/out/data/real-shapes-def",), "/old/out/data/real-shapes-def", "erm", {}, "small_cnn",
                       hparams, 0, init_checkpoint=f"/old/out/runs/stage1_synthetic-ad027a24d7c02e97/{CHECKPOINT}")
    assert (stage1.key(), stage2.key()) == ("ad027a24d7c02e97", "4f36c52cb496dbab")  # no workspace: as before
    at_new = [replace(s, workspace="/new/place") for s in (stage1, stage2)]
    moved = [replace(s, workspace="/old/out") for s in (stage1, stage2)]
    assert [s.legacy_key("/old/out") for s in moved] == ["ad027a24d7c02e97", "4f36c52cb496dbab"]
    assert [s.key() for s in moved] != ["ad027a24d7c02e97", "4f36c52cb496dbab"]
    assert at_new[0].key() == stage1.key()  # nothing inside /new/place: keyed as it is


def _old_workspace(root, config) -> tuple[str, str]:
    """FFR's two stages as the code before wrote them at ``root``: absolute keys, absolute checkpoint URIs."""
    stage1, _ = _ffr_specs(config)
    old1 = _old_key(stage1)
    checkpoint1 = f"{root}/runs/stage1_synthetic-{old1}/{CHECKPOINT}"
    _, stage2 = _ffr_specs(config, previous=checkpoint1)
    old2 = _old_key(stage2)
    for name, key, metric in [("stage1_synthetic", old1, 0.25), ("stage2_real", old2, 0.75)]:
        folder = Location(root) / "runs" / f"{name}-{key}"
        write_marker(folder / RESULT_FILE, {"checkpoint_uri": f"{folder}/{CHECKPOINT}", "key": key,
                                            "metrics": {"val/worst_group_accuracy": metric}, "reused": False})
    return old1, old2


def _found(config):
    """FFR's stages as a run finds them: stage 2 from the checkpoint stage 1 was found with."""
    runs = f"{config.output_dir}/runs"
    stage1 = finished_stage(_ffr_specs(config)[0], runs)
    assert stage1 is not None
    spec2 = _ffr_specs(config, previous=stage1.checkpoint_uri)[1]
    return stage1, finished_stage(spec2, runs), spec2


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_workspace_keyed_before_is_found_where_it_is_and_moved_then_adopted(tmp_path):
    first = tmp_path / "first" / "outputs"
    config = build_config(overrides={"output_dir": str(first), "train": {"mixture": "ffr"}})
    old1, old2 = _old_workspace(first, config)

    # Where it was written: both found by their legacy keys, read-only (a dry run asks too).
    before = _files(first)
    stage1, stage2, _ = _found(config)
    assert (stage1.legacy_key, stage2.legacy_key) == (old1, old2)
    assert stage1.checkpoint_uri == f"{first}/runs/stage1_synthetic-{old1}/{CHECKPOINT}"
    assert stage2.metrics == {"val/worst_group_accuracy": 0.75}
    assert _files(first) == before

    # Moved before any new run: its markers say where it was, so its legacy keys are known.
    second = tmp_path / "second" / "moved"
    shutil.move(first, second)
    config = build_config(overrides={"output_dir": str(second), "train": {"mixture": "ffr"}})
    stage1, stage2, spec2 = _found(config)
    assert (stage1.legacy_key, stage2.legacy_key) == (old1, old2)
    assert stage1.checkpoint_uri == f"{second}/runs/stage1_synthetic-{old1}/{CHECKPOINT}"  # its own copy, never the old place's

    # A run adopts them (nothing trains: both are found) ...
    resources = Resources()
    assert run_stage(_ffr_specs(config)[0], resources, f"{second}/runs").legacy_key == old1
    assert run_stage(spec2, resources, f"{second}/runs").reused
    adopted = json.loads((second / "runs" / spec2.run_name / RESULT_FILE).read_text())
    assert adopted["adopted_from"] == old2 and adopted["checkpoint"] == f"stage2_real-{old2}/{CHECKPOINT}"

    # ... so, moved again, both are found by their keys now, the old runs' checkpoints handed over.
    third = tmp_path / "third"
    shutil.move(second, third)
    config = build_config(overrides={"output_dir": str(third), "train": {"mixture": "ffr"}})
    stage1, stage2, spec2 = _found(config)
    assert (stage1.legacy_key, stage2.legacy_key) == (None, None)
    assert stage2.key == spec2.key() and stage2.checkpoint_uri == f"{third}/runs/stage2_real-{old2}/{CHECKPOINT}"


def test_an_object_store_workspace_keyed_before_is_found_at_another_prefix():
    register_filesystem("mem", pyarrow.fs._MockFileSystem())
    try:
        first, second = "mem://bucket/first", "mem://bucket/copied/here"
        old1, old2 = _old_workspace(first, build_config(overrides={"output_dir": first, "train": {"mixture": "ffr"}}))
        for marker in [f"runs/stage1_synthetic-{old1}/{RESULT_FILE}", f"runs/stage2_real-{old2}/{RESULT_FILE}"]:
            put_bytes(Location(second) / marker, get_bytes(Location(first) / marker))
        stage1, stage2, _ = _found(build_config(overrides={"output_dir": second, "train": {"mixture": "ffr"}}))
        assert (stage1.legacy_key, stage2.legacy_key) == (old1, old2)
        assert stage2.checkpoint_uri == f"{second}/runs/stage2_real-{old2}/{CHECKPOINT}"
    finally:
        register_filesystem("mem", None)


def test_a_workspace_not_keyed_before_finds_nothing_it_lacks(tmp_path):
    config = build_config(overrides={"output_dir": str(tmp_path / "out"), "train": {"mixture": "ffr"}})
    (tmp_path / "out" / "runs" / "tune").mkdir(parents=True)  # a folder without a stage's marker
    assert finished_stage(_ffr_specs(config)[0], str(tmp_path / "out" / "runs")) is None


def test_a_stage_run_keyed_before_is_found_and_keyed_anew(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "fake2real", tmp_path / "mlartifacts")
    old = tracker.run_for("old-key", "r0.9-ffr-erm-seed0/stage2_real")
    assert tracker.run_for("new-key", "r0.9-ffr-erm-seed0/stage2_real", former_key="old-key") == old
    assert tracker.client.get_run(old).data.tags[KEY_TAG] == "new-key"
    assert tracker.run_for("new-key", "r0.9-ffr-erm-seed0/stage2_real") == old
    assert tracker.run_for("another-key", "r0.9-ffr-erm-seed0/stage2_real", former_key="old-key") != old


def test_a_trained_generator_is_found_in_the_moved_workspace(tmp_path):
    spec = GeneratorSpec("table", {"dataset": "shapes"}, ("a", "b"), ("x", "y"), {"steps": 1})
    first = tmp_path / "first" / "runs"
    pipeline = f"{first}/{spec.run_name}/{CHECKPOINT}/pipeline"
    write_marker(first / spec.run_name / "generator.json", {"key": spec.key(), "pipeline_uri": pipeline, "metrics": {}})
    shutil.move(tmp_path / "first", tmp_path / "second")
    found = finished_generator(spec, str(tmp_path / "second" / "runs"))
    assert found["pipeline_uri"] == f"{tmp_path}/second/runs/{spec.run_name}/{CHECKPOINT}/pipeline"


def test_cached_features_move_with_the_workspace(tmp_path, monkeypatch):
    features = {"x": np.ones((2, 3)), "logits": np.zeros((2, 2)), "labels": np.arange(2), "groups": np.arange(2)}
    monkeypatch.setattr(posthoc, "extract", lambda *args: features)

    def cached(root):
        spec = posthoc.PosthocSpec(f"{root}/runs/stage2_real-k/{CHECKPOINT}", "small_cnn", f"{root}/data/real", None, "dfr", 0,
                                   workspace=str(root))
        return posthoc.cached_features(None, spec, spec.eval_table, "val", 2, "cpu", f"{root}/runs")

    cached(tmp_path / "first")
    shutil.move(tmp_path / "first", tmp_path / "second")
    monkeypatch.setattr(posthoc, "extract", lambda *args: pytest.fail("the moved cache was not found"))
    assert np.array_equal(cached(tmp_path / "second")["x"], features["x"])
