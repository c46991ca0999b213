"""MLflow as a user meets it: run levels and names, logged params, the README's filters run against
a real sqlite store, where the sweep says to look, and a report refusing a store that is not there.

The runs are made by the real ``run_experiment`` and ``run_searched_cell`` (with the search trial's
own ``_trial``); only the data, training and Tune are replaced (no Ray starts).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.tune

import fake2real.run.experiment as experiment
import fake2real.run.search as search
from fake2real import cli
from fake2real.errors import TrackingError
from fake2real.sections import DatasetConfig
from fake2real.entrypoints import where_to_look
from fake2real.run.search_plan import cell_key
from fake2real.run.sweep import SweepResult
from fake2real.track.mlflow_runs import Tracker, existing_store
from fake2real.track.names import (
    EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, FILTERS, LEVEL_TAG, LEVELS, PARENT_TAG, SELECTED_TAG, SORT_METRIC, STAGE, SWEEP, TRIAL,
    TRIAL_TAG, sweep_run_name,
)
from fake2real.data.datasets import logged_params
from fake2real.train.stage_record import StageResult
from helpers import experiment_config

REPO = Path(__file__).resolve().parents[2]
README_FILTERS = re.compile(r"<!-- mlflow-filters.*?-->(.*?)<!-- /mlflow-filters -->", re.S)


def _readme_block() -> str:
    found = README_FILTERS.search((REPO / "README.md").read_text())
    assert found, "README.md has no <!-- mlflow-filters --> … <!-- /mlflow-filters --> block"
    return found.group(1)


def _wga(spec) -> float:
    """A stage's made-up test WGA: fixed by what the stage computes, as a re-run's would be."""
    return int(spec.key()[:6], 16) / 16**6


def _no_training(monkeypatch, tmp_path):
    """run_experiment without data, Ray or training: every stage "trains" at once."""
    monkeypatch.setattr(experiment, "prepare_real", lambda config, workspace: tmp_path / f"real-{config.dataset.bias_ratio}")
    monkeypatch.setattr(experiment, "prepare_synthetic", lambda *args, test=False, **kw: tmp_path / ("synthetic-test" if test else "synthetic"))
    monkeypatch.setattr(experiment, "read_info", lambda path: SimpleNamespace(extra={"plan_id": Path(path).name}))
    monkeypatch.setattr(experiment, "run_posthoc_task", lambda *args: {})

    def run_stage(spec, resources, runs, callbacks, report_to_tune=False, single_worker=None):
        wga = _wga(spec)
        metrics = {"test/worst_group_accuracy": wga, "val/worst_group_accuracy": wga, "test/balanced_accuracy": wga}
        return StageResult(spec.key(), f"{tmp_path}/checkpoints/{spec.name}-{spec.key()}", metrics)

    monkeypatch.setattr(experiment, "run_stage", run_stage)


def _sweep_run(tracker, config) -> str:
    """The sweep's run, as run_sweep opens it."""
    return tracker.run_for(f"sweep-{config.digest()}", sweep_run_name(config.name), params={"name": config.name}, tags={LEVEL_TAG: SWEEP})


def _fake_search_cell(trials: list[dict], best: int, stopped: bool = False):
    """search_cell without Tune: the shared stages once, then each trial through search._trial.
    ``stopped``: Tune stops every trial at its last report (ASHA's max_t), so no trial closes its
    own runs, and the search closes them as Tune's stopped trials."""

    def search_cell(config, tracker, cell_run_id, runs):
        experiment.train_shared_stages(config, tracker, cell_run_id)
        tracking = {"uri": tracker.uri, "experiment": tracker.experiment_name, "artifacts": str(tracker.artifact_root)}
        for number, params in enumerate(trials):
            trial_id = f"t{number:07d}"
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(ray.tune, "get_context", lambda trial_id=trial_id: SimpleNamespace(get_trial_id=lambda: trial_id))
                if stopped:
                    patch.setattr(Tracker, "finish", lambda self, run_id, status="FINISHED": None)
                search._trial(params, config.model_dump(mode="json"), tracking, cell_run_id)
        if stopped:
            tracker.close_stopped_trials(cell_run_id, {f"t{number:07d}" for number in range(len(trials))})
        return search.CellSearch(cell_key(config), trials[best], 0.5, len(trials), 3 * len(trials))

    return search_cell


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _fill_store(monkeypatch, tmp_path_factory.mktemp("store"))


def _fill_store(monkeypatch, tmp_path) -> Tracker:
    """A store holding what users make: the quick job (no search), a searched sweep (2 trials, seeds
    0 and 1) and a jobs/train.py run."""
    _no_training(monkeypatch, tmp_path)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "fake2real", tmp_path / "mlartifacts")
    quick = experiment_config(tmp_path, name="quick", dataset={"bias_ratio": 0.99})
    quick_run = _sweep_run(tracker, quick)
    for mixture, method in [("none", "erm"), ("ffr", "erm"), ("ffr", "groupdro")]:
        cell = experiment_config(tmp_path, name="quick", dataset={"bias_ratio": 0.99}, train={"mixture": mixture, "method": method})
        experiment.run_experiment(cell, tracker, parent_run_id=quick_run)
    tracker.finish(quick_run)

    searched = experiment_config(tmp_path, name="searched", dataset={"bias_ratio": 0.9}, train={"mixture": "ffr", "method": "groupdro"},
                                 sweep={"search": {"num_samples": 2}, "max_concurrent_experiments": 2})  # its seeds at once, in threads
    searched_run = _sweep_run(tracker, searched)
    trials = [{"lr": 0.002, "weight_decay": 1e-4, "epochs": 2, "method.eta": 0.1}, {"lr": 0.004, "weight_decay": 1e-5, "epochs": 3, "method.eta": 0.3}]
    monkeypatch.setattr(search, "search_cell", _fake_search_cell(trials, best=1))
    search.run_searched_cell(searched, [0, 1], tracker, searched_run, str(tmp_path / "runs"))
    tracker.finish(searched_run)

    experiment.run_experiment(experiment_config(tmp_path, dataset={"bias_ratio": 0.95}), tracker)  # jobs/train.py
    return tracker


def _runs(tracker, filter_string: str = "", order_by: list[str] | None = None) -> list:
    return tracker.client.search_runs([tracker.experiment_id], filter_string=filter_string, order_by=order_by, max_results=1000)


def test_readme_documents_exactly_the_filters_the_code_defines():
    block = _readme_block()
    documented = {text for text in re.findall(r"`([^`]+)`", block) if text.startswith("tags.")}
    assert documented == set(FILTERS.values())
    assert f"`{SORT_METRIC}`" in block
    assert "runName LIKE" not in (REPO / "README.md").read_text()  # the old filter listed nothing for the quick job


def test_experiments_filter_lists_every_experiment_best_first(store):
    order = [f'metrics."{SORT_METRIC}" DESC']
    found = _runs(store, FILTERS["experiments"], order)
    assert sorted(run.info.run_name for run in found) == [
        "r0.9-ffr-groupdro-seed0", "r0.9-ffr-groupdro-seed1",
        "r0.95-ffr-erm-seed0",
        "r0.99-ffr-erm-seed0", "r0.99-ffr-groupdro-seed0", "r0.99-none-erm-seed0",
    ]
    wga = [run.data.metrics[SORT_METRIC] for run in found]
    assert wga == sorted(wga, reverse=True) and len(set(wga)) == len(wga)


def test_cells_filter_lists_the_searched_cells(store):
    assert [run.info.run_name for run in _runs(store, FILTERS["cells"])] == ["cell-r0.9-ffr-groupdro"]


def test_every_run_has_a_level_and_a_unique_name(store):
    runs = _runs(store)
    assert {run.data.tags.get(LEVEL_TAG) for run in runs} == set(LEVELS)
    names = [run.info.run_name for run in runs]
    assert len(names) == len(set(names)), sorted(names)
    by_name = {run.info.run_name: run for run in runs}
    assert by_name["sweep-quick"].data.tags[LEVEL_TAG] == SWEEP
    assert by_name["r0.99-ffr-groupdro-seed0/stage2_real"].data.tags[LEVEL_TAG] == STAGE
    # FFR's stage 1 is shared by both methods: one run, named for the experiment that trained it first.
    assert [name for name in names if name.startswith("r0.99-") and name.endswith("/stage1_synthetic")] == ["r0.99-ffr-erm-seed0/stage1_synthetic"]


def test_a_selected_trial_becomes_its_seeds_experiment(store):
    trials = _runs(store, f"tags.\"{LEVEL_TAG}\" = '{TRIAL}'")
    assert [run.info.run_name for run in trials] == ["r0.9-ffr-groupdro-trialt0000000"]  # the other one was selected
    assert trials[0].data.tags[TRIAL_TAG] == "t0000000"
    seed0 = next(run for run in _runs(store, FILTERS["experiments"]) if run.info.run_name == "r0.9-ffr-groupdro-seed0")
    assert seed0.data.tags[TRIAL_TAG] == "t0000001" and seed0.data.tags[SELECTED_TAG] == "true"
    trial_stage = [run.info.run_name for run in _runs(store, f"tags.\"{LEVEL_TAG}\" = '{STAGE}'") if "-trial" in run.info.run_name]
    assert sorted(trial_stage) == ["r0.9-ffr-groupdro-trialt0000000/stage2_real", "r0.9-ffr-groupdro-trialt0000001/stage2_real"]


@pytest.mark.parametrize("closed", ["KILLED", "FAILED"])
def test_the_stages_of_a_stopped_selected_trial_finish_with_the_experiment_its_run_became(monkeypatch, tmp_path, make_config, closed):
    """Tune stopped the trials at their last report: the search marked their runs KILLED. Seed 0
    reuses the selected trial's run and stages; the stopped trial's process, ending, may close
    its stage again (FAILED) while seed 0 runs. The experiment and the stages it used end FINISHED."""
    _no_training(monkeypatch, tmp_path)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "fake2real", tmp_path / "mlartifacts")
    cell = make_config(name="searched", dataset={"bias_ratio": 0.9}, train={"mixture": "ffr", "method": "groupdro"},
                       sweep={"search": {"num_samples": 2}, "max_concurrent_experiments": 2})  # its seeds at once, in threads
    trials = [{"lr": 0.002, "weight_decay": 1e-4, "epochs": 2, "method.eta": 0.1}, {"lr": 0.004, "weight_decay": 1e-5, "epochs": 3, "method.eta": 0.3}]
    monkeypatch.setattr(search, "search_cell", _fake_search_cell(trials, best=1, stopped=True))
    named = lambda name: next(run for run in _runs(tracker) if run.info.run_name == name)  # noqa: E731

    def posthoc(step, *args):  # seed 0's post-hoc step: its stages were reused a moment ago
        if step.seed == 0:
            tracker.finish(named("r0.9-ffr-groupdro-trialt0000001/stage2_real").info.run_id, closed)
        return {}

    monkeypatch.setattr(experiment, "run_posthoc_task", posthoc)
    search.run_searched_cell(cell, [0, 1], tracker, _sweep_run(tracker, cell), str(tmp_path / "runs"))
    seed0 = named("r0.9-ffr-groupdro-seed0")
    assert seed0.data.tags[TRIAL_TAG] == "t0000001" and seed0.info.status == "FINISHED"
    used = [seed0.data.tags[f"{stage}.run_id"] for stage in ("stage1_synthetic", "stage2_real")]
    children = [run.info.run_id for run in _runs(tracker, f"tags.`{PARENT_TAG}` = '{seed0.info.run_id}' and tags.`{LEVEL_TAG}` = '{STAGE}'")]
    assert children == [used[1]]
    assert {tracker.client.get_run(run_id).info.status for run_id in used} == {"FINISHED"}
    other = named("r0.9-ffr-groupdro-trialt0000000")  # the trial not selected stays what Tune made of it
    assert other.info.status == "KILLED" and named("r0.9-ffr-groupdro-trialt0000000/stage2_real").info.status == "KILLED"


def test_a_shapes_run_logs_no_real_dataset_fields(store):
    params = next(run for run in _runs(store) if run.info.run_name == "r0.99-none-erm-seed0").data.params
    dataset = {key.removeprefix("dataset.") for key in params if key.startswith("dataset.")}
    assert "shapes.image_size" in dataset and "bias_ratio" in dataset and "split_seed" in dataset
    for unused in ("class_attribute", "bias_attribute", "root", "metadata", "class_names", "bias_names", "table", "image_size", "jpeg_quality"):
        assert unused not in dataset


def test_dataset_params_drop_only_defaults_the_dataset_does_not_read():
    shapes = logged_params(DatasetConfig())
    assert "shapes" in shapes and not {"root", "table", "class_attribute", "image_size", "metadata"} & set(shapes)
    celeba = logged_params(DatasetConfig(name="celeba", root="/data/celeba"))
    assert {"root", "table", "image_size", "jpeg_quality", "class_attribute", "bias_attribute"} <= set(celeba)
    assert not {"shapes", "metadata", "class_names", "bias_names"} & set(celeba)
    folder = logged_params(DatasetConfig(name="folder", root="/data/f", metadata="m.csv"))
    assert {"metadata", "class_names", "bias_names"} <= set(folder) and "class_attribute" not in folder
    # A field that was set is kept, whether the dataset reads it or not.
    tuned = logged_params(DatasetConfig(name="utkface", root="/data/u", shapes={"image_size": 64}))
    assert tuned["shapes"]["image_size"] == 64 and "class_attribute" not in tuned


def test_tracker_marks_a_new_experiment_as_model_development(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path / "artifacts")
    assert tracker.client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_a_run_found_again_gets_the_level_it_lacks(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path / "artifacts")
    old = tracker.run_for("k", "logged-before-levels")
    assert tracker.run_for("k", "x", tags={LEVEL_TAG: TRIAL}) == old
    assert tracker.client.get_run(old).data.tags[LEVEL_TAG] == TRIAL
    tracker.run_for("k", "x", tags={LEVEL_TAG: SWEEP})  # a level it has is kept
    assert tracker.client.get_run(old).data.tags[LEVEL_TAG] == TRIAL


def _sweep_result(uri: str) -> SweepResult:
    return SweepResult([], "", "outputs/results/quick-abc", "run123", uri, "7")


def test_where_to_look_prints_a_working_ui_command_and_the_runs_page():
    text = where_to_look(_sweep_result("sqlite:////tmp/x/mlflow.db"))
    assert f"{sys.executable} -m mlflow ui --backend-store-uri sqlite:////tmp/x/mlflow.db" in text
    assert "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning" in text
    assert FILTERS["experiments"] in text and SORT_METRIC in text
    assert f"{sys.executable} jobs/report.py --tracking-uri sqlite:////tmp/x/mlflow.db --sweep-run run123" in text
    assert importlib.util.find_spec("mlflow.__main__") is not None  # what makes `python -m mlflow` work
    server = where_to_look(_sweep_result("http://mlflow:5000/"))
    assert "http://mlflow:5000/#/experiments/7/runs?workflowType=machine_learning" in server and "mlflow ui" not in server


def test_a_missing_sqlite_store_is_refused_not_created(tmp_path):
    missing = tmp_path / "nope" / "mlflow.db"
    with pytest.raises(TrackingError, match=f"^no MLflow store at {re.escape(str(missing))}$"):
        existing_store(f"sqlite:///{missing}")
    assert not missing.parent.exists()
    present = tmp_path / "mlflow.db"
    Tracker(f"sqlite:///{present}", "e", tmp_path / "artifacts")
    assert existing_store(f"sqlite:///{present}") == f"sqlite:///{present}"
    assert existing_store("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_report_job_refuses_a_mistyped_store_in_one_line(tmp_path, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("report_job", REPO / "jobs" / "report.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    missing = tmp_path / "nope" / "mlflow.db"
    monkeypatch.setattr(sys, "argv", ["report.py", "--tracking-uri", f"sqlite:///{missing}"])
    with pytest.raises(SystemExit) as exit:
        cli.main(job.main)
    assert exit.value.code == 2
    assert capsys.readouterr().err == f"error: no MLflow store at {missing}\n"
    assert not missing.parent.exists()
