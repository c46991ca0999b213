"""The whole path on a local Ray cluster with 2 CPU workers, tracked in a real MLflow server."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
from mlflow.tracking import MlflowClient

from fake2real.config import build_config
from fake2real.data.table import read_info, read_table
from fake2real.run.experiment import run_experiment
from fake2real.presets import preset
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import PARENT_TAG
from fake2real.train.spec import BEST_MODEL


def test_ffr_groupdro_end_to_end(ray_connected, mlflow_server, tmp_path):
    config = build_config(
        overrides={
            "output_dir": str(tmp_path / "out"),
            "tracking": {"uri": mlflow_server, "experiment": "pipeline"},
            "train": {
                "mixture": "ffr",
                "method": "groupdro",
                "num_workers": 2,
                "method_params": {"groupdro": {"eta": 0.05}},
                "real": {"epochs": 2},
                "synthetic": {"epochs": 2},
            },
        },
        base=preset("smoke"),
    )
    tracker = Tracker(mlflow_server, "pipeline", tmp_path / "artifacts")
    result = run_experiment(config, tracker)

    # Data: the real table follows the bias-ratio rule; the synthetic one is group-balanced.
    real_path = Path(tmp_path / "out" / "data").glob("real-*")
    real = read_info(next(real_path))
    # smoke: 40 per group at r=0.9 → the reference keeps ceil(40·0.1/0.9 = 4.44) = 5 minority
    # images; val: ceil(max(10·0.1/0.9, floor 2)) = 2.
    assert real.group_counts["train"] == {"y0_b0": 40, "y0_b1": 5, "y1_b0": 5, "y1_b1": 40}
    assert real.group_counts["val"] == {"y0_b0": 10, "y0_b1": 2, "y1_b0": 2, "y1_b1": 10}
    assert real.group_counts["test"] == {"y0_b0": 10, "y0_b1": 10, "y1_b0": 10, "y1_b1": 10}
    synthetic_dir = next(Path(tmp_path / "out" / "data").glob("synthetic-shapes-*"))
    synthetic = read_info(synthetic_dir)
    # USB budget (40−5)·2 = 70 → FFR 70 // 4 = 17 per group.
    assert synthetic.group_counts["train"] == {"y0_b0": 17, "y0_b1": 17, "y1_b0": 17, "y1_b1": 17}
    rows = read_table(synthetic_dir)
    assert pc.all(pc.equal(rows["g"], 1)).as_py()
    assert rows["generator"].null_count == 0 and rows["prompt"].null_count == 0
    assert len(set(rows["id"].to_pylist())) == rows.num_rows

    # Stages hand over by reference: stage 2 starts from stage 1's selected checkpoint.
    stage1, stage2 = result.stages
    assert (Path(stage1.checkpoint_uri) / BEST_MODEL).is_file()
    assert (Path(stage2.checkpoint_uri) / BEST_MODEL).is_file()
    for key in ("test/worst_group_accuracy", "test/balanced_accuracy", "val/worst_group_accuracy"):
        assert 0.0 <= result.metrics[key] <= 1.0
    assert result.metrics["test/worst_group_accuracy"] <= result.metrics["test/balanced_accuracy"]

    # MLflow: the experiment run with its two stages as children, read back from the server.
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("pipeline")
    children = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    by_name = {run.info.run_name.rsplit("/", 1)[-1]: run for run in children}
    assert set(by_name) == {"stage1_synthetic", "stage2_real"}
    experiment_name = client.get_run(result.run_id).info.run_name
    assert sorted(run.info.run_name for run in children) == [f"{experiment_name}/stage1_synthetic", f"{experiment_name}/stage2_real"]
    assert all(run.info.status == "FINISHED" for run in children)
    stage2_run = by_name["stage2_real"]
    assert stage2_run.data.params["init_checkpoint"] == stage1.checkpoint_uri
    assert stage2_run.data.params["method"] == "groupdro"
    assert stage2_run.data.params["method_params.eta"] == "0.05"
    assert stage2_run.data.tags["checkpoint_uri"] == stage2.checkpoint_uri
    history = client.get_metric_history(stage2_run.info.run_id, "val/group/y0_b1/accuracy")
    # The model stage 2 started from (step 0), one value per epoch (steps 1, 2) and the selected
    # model's at step 3.
    assert sorted(m.step for m in history) == [0, 1, 2, 3]
    # Stage 2 starts from stage 1's selected model: its step 0 is that model on the same split.
    for key in ("val/worst_group_accuracy", "val/balanced_accuracy", "val/group/y0_b1/accuracy"):
        at_start = [m.value for m in client.get_metric_history(stage2_run.info.run_id, key) if m.step == 0]
        assert at_start == [stage1.metrics[key]], key
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["test/worst_group_accuracy"] == result.metrics["test/worst_group_accuracy"]
    assert "test/group/y1_b0/accuracy" in parent.data.metrics
    assert parent.data.params["train.mixture"] == "ffr"


def test_generation_is_deterministic_across_batching_and_actors(ray_connected, tmp_path):
    from fake2real.data.datasets.shapes import ShapesWorld
    from fake2real.data.datasets import shapes
    from fake2real.data.table import TableInfo
    from fake2real.generate.job import run_generation
    from fake2real.generate.plan import build_plan
    from fake2real.generate.spec import ActorPool, ImageSpec

    spec = ImageSpec("procedural", {"world": ShapesWorld().model_dump()})
    _, plan = build_plan({(0, 0): 7, (0, 1): 5, (1, 0): 5, (1, 1): 7}, shapes.prompt, {"test": 1})

    def generate(name: str, batch_size: int, num_actors: int) -> dict:
        info = TableInfo("shapes", shapes.CLASS_NAMES, shapes.BIAS_NAMES, "synthetic")
        info = run_generation(plan, tmp_path / name, info, spec, ActorPool(batch_size=batch_size, num_actors=num_actors))
        assert info.group_counts["train"] == {"y0_b0": 7, "y0_b1": 5, "y1_b0": 5, "y1_b1": 7}
        table = read_table(tmp_path / name)
        return dict(zip(table["id"].to_pylist(), table["image"].to_pylist()))

    first = generate("a", batch_size=4, num_actors=1)
    second = generate("b", batch_size=9, num_actors=2)
    assert len(first) == plan.num_rows
    assert first == second
    assert not list(tmp_path.glob(".*partial*"))
