"""Names of the project's MLflow runs and tags, and the run filters the README documents.

Runs nest sweep → cell (searched sweeps only) → experiment or trial → stage; every run has the tag
``fake2real.level`` saying which of these it is. A search trial's experiment run is a ``trial``;
the selected configuration's run for each seed is an ``experiment`` (for seed 0 that may be the
selected trial's own run, renamed and re-tagged by ``mark_selected``, its stage runs FINISHED with
it by ``Tracker.finish_stage_runs``).

Run names carry the bias ratio r: ``sweep-<name>``, ``cell-r<r>-<mixture>-<method>``,
``r<r>-<mixture>-<method>-seed<seed>``, ``r<r>-<mixture>-<method>-trial<Tune trial id>`` and
``<experiment or trial run name>/<stage>``. A stage shared by experiments (FFR's stage 1) is
one run, named after the experiment that trained it first.
"""

from __future__ import annotations

KEY_TAG = "fake2real.key"  # a hash of what the run computes: a re-run finds its run again
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
LEVEL_TAG = "fake2real.level"
TRIAL_TAG = "fake2real.trial"  # on a trial's run: its Tune trial id
SELECTED_TAG = "fake2real.selected"  # "true" on the experiment runs of a cell's selected configuration
MODEL_INIT_TAG = "model.init"  # on an experiment run: "random" or "pretrained:<file>"
CHECKPOINT_TAG = "checkpoint_uri"  # on experiment and stage runs: the selected model's checkpoint
# On a stage run: the Ray node ids its workers reported from, in order of first report (a stage
# restarted on another node after a node died lists both).
NODES_TAG = "fake2real.node_ids"
# On experiment and cell runs of a sweep with axes: the run's point, as JSON ({config key: value}).
AXES_TAG = "fake2real.axes"
# The report key (a string, not a metric) each worker's reports carry its node id in.
NODE_ID_KEY = "node_id"

SWEEP, CELL, EXPERIMENT, TRIAL, STAGE = "sweep", "cell", "experiment", "trial", "stage"
LEVELS = (SWEEP, CELL, EXPERIMENT, TRIAL, STAGE)
# A generator the platform trained (generation.group_diffusion): a run of its own, outside any sweep.
GENERATOR = "generator"

# Set on the MLflow experiment when the Tracker creates it. MLflow 3.17's UI still opens an
# experiment on its GenAI overview; ``RUNS_PAGE`` is the URL that shows the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
RUNS_PAGE = "#/experiments/{experiment_id}/runs?workflowType=machine_learning"

# The run filters the README documents (between its ``mlflow-filters`` markers), each checked
# against a real store by tests/unit/test_mlflow_runs.py.
FILTERS = {
    "experiments": f"tags.\"{LEVEL_TAG}\" = '{EXPERIMENT}'",
    "cells": f"tags.\"{LEVEL_TAG}\" = '{CELL}'",
}
# The metrics runs are judged and selected by (train/metrics.py writes them as <split>/<name>).
TEST_WGA = "test/worst_group_accuracy"
VAL_WGA = "val/worst_group_accuracy"
SORT_METRIC = TEST_WGA
# Epochs that compete for selection so far (a warm-up model's count 0; the selected model's
# report is one more): the time axis of early stopping (search.py's ASHA).
SELECTION_STEP = "selection_step"


def cell_label(bias_ratio: float | None, mixture: str, method: str, point: str = "") -> str:
    """``r0.99-ffr-erm``; at a point of the sweep's axes, ``[semantic_gap=0.5] r0.99-ffr-erm``."""
    return (f"[{point}] " if point else "") + f"r{bias_ratio}-{mixture}-{method}"


def sweep_run_name(sweep: str) -> str:
    return f"sweep-{sweep}"


def cell_run_name(bias_ratio: float | None, mixture: str, method: str, point: str = "") -> str:
    return f"cell-{cell_label(bias_ratio, mixture, method, point)}"


def experiment_run_name(bias_ratio: float | None, mixture: str, method: str, seed: int, point: str = "") -> str:
    return f"{cell_label(bias_ratio, mixture, method, point)}-seed{seed}"


def trial_run_name(bias_ratio: float | None, mixture: str, method: str, trial_id: str, point: str = "") -> str:
    return f"{cell_label(bias_ratio, mixture, method, point)}-trial{trial_id}"


def stage_run_name(experiment_run_name: str, stage: str) -> str:
    return f"{experiment_run_name}/{stage}"


def stage_run_id_tag(stage: str) -> str:
    """The tag on an experiment run that holds its stage's run id."""
    return f"{stage}.run_id"


def experiment_run_tags(pretrained_file: str | None) -> dict:
    return {LEVEL_TAG: EXPERIMENT, MODEL_INIT_TAG: f"pretrained:{pretrained_file}" if pretrained_file else "random"}


def trial_run_tags(trial_id: str) -> dict:
    return {LEVEL_TAG: TRIAL, TRIAL_TAG: trial_id}


def mark_selected(client, run_id: str, name: str) -> None:
    """A seed's run of a cell's selected configuration: an experiment, named for its seed (seed
    0's may be the selected trial's run; it keeps its ``fake2real.trial`` tag)."""
    client.set_tag(run_id, SELECTED_TAG, "true")
    client.set_tag(run_id, LEVEL_TAG, EXPERIMENT)
    client.set_tag(run_id, RUN_NAME_TAG, name)
