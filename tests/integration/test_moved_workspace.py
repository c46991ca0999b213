"""Results that move with their folder: a sweep run in one folder, that folder moved (its
``outputs/`` and MLflow store with it) and the same command run from its new place finds every
stage finished (none trains again) and logs into the same MLflow runs.

It prints the figures for the record (``-s``): stages, stages trained again after the move, and
the seconds of each run. Run at the commit before relative keys, every stage trained again.

    pytest tests/integration/test_moved_workspace.py -s
"""

from __future__ import annotations

import shutil
import time

from mlflow.tracking import MlflowClient

from helpers import run_job

SWEEP = ("sweep.py", "--preset", "smoke", "output_dir=outputs", "tracking.uri=sqlite:///mlflow.db",
         "sweep.mixtures=[none,ffr]", "sweep.methods=[erm]", "sweep.search.num_samples=0")


def _stages(checkout) -> set[str]:
    return {p.parent.name for p in (checkout / "outputs" / "runs").glob("*/stage_result.json")}


def _timed(checkout, env) -> tuple[str, float]:
    started = time.monotonic()
    completed = run_job(*SWEEP, env=env, cwd=checkout, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout + completed.stderr, time.monotonic() - started


def test_a_moved_workspace_reuses_every_stage(ray_head, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    _, first_s = _timed(first, ray_head.env)
    stages = _stages(first)
    assert len(stages) == 3  # none's real stage, FFR's stage 1 and stage 2

    moved = tmp_path / "elsewhere" / "checkout"
    moved.parent.mkdir()
    shutil.move(first, moved)  # another place, or another checkout: outputs/ and mlflow.db go with it
    output, moved_s = _timed(moved, ray_head.env)
    retrained = _stages(moved) - stages
    print(f"\n[moved workspace] {len(stages)} stages; trained again after the move: {len(retrained)}; "
          f"first run {first_s:.1f} s, after the move {moved_s:.1f} s", flush=True)

    assert not retrained, sorted(retrained)
    assert output.count("finished earlier, reused") == 3, output[-3000:]
    assert "TrainController" not in output and "(run_local" not in output and "epoch 1:" not in output
    # Found again in MLflow too: one run per stage, none twinned by the second sweep.
    client = MlflowClient(tracking_uri=f"sqlite:///{moved / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fake2real").experiment_id])
    stage_runs = sorted(run.info.run_name.rsplit("/", 1)[-1] for run in runs if "/" in run.info.run_name)
    assert stage_runs == ["real", "stage1_synthetic", "stage2_real"], stage_runs
