"""A sweep's experiment runs, read back from MLflow: the only input of the static report.

A sweep run (tag ``fake2real.key`` = ``sweep-…``) lists its cells in its ``results.csv`` artifact
(attached when the sweep ends); a sweep still running, or one without that artifact, is read
from its child runs. An experiment run shared with an earlier sweep keeps its first parent, so
the artifact is the complete list when it exists.
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass, field

from fake2real.errors import TrackingError
from fake2real.report.cells import ratio_order
from fake2real.track.names import AXES_TAG, CHECKPOINT_TAG, KEY_TAG, PARENT_TAG, SELECTED_TAG, TEST_WGA, TRIAL_TAG


@dataclass
class RunRecord:
    run_id: str
    bias_ratio: float | None  # None: the dataset as distributed (e.g. SpuCo's native split)
    mixture: str
    method: str
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    model: str = ""
    input_size: int | None = None  # train.input_size: the model resizes its input to it
    checkpoint_uri: str | None = None
    real_table: str | None = None
    synthetic_table: str | None = None
    point: dict = field(default_factory=dict)  # its values of the sweep's axes (its fake2real.axes tag)

    @property
    def cell(self) -> tuple[float | None, str, str]:
        return (self.bias_ratio, self.mixture, self.method)


@dataclass
class SweepRuns:
    run_id: str
    name: str
    status: str
    records: list[RunRecord]


def _record(run) -> RunRecord:
    params, tags = run.data.params, run.data.tags

    def table(key: str) -> str | None:
        value = params.get(key)
        return None if value in (None, "none") else value

    return RunRecord(
        run_id=run.info.run_id,
        bias_ratio=None if params["dataset.bias_ratio"] == "None" else float(params["dataset.bias_ratio"]),
        mixture=params["train.mixture"],
        method=params["train.method"],
        seed=int(params["seed"]),
        metrics=dict(run.data.metrics),
        model=params.get("train.model", ""),
        input_size=None if params.get("train.input_size", "None") == "None" else int(params["train.input_size"]),
        checkpoint_uri=tags.get(CHECKPOINT_TAG),
        real_table=table("data.real_table"),
        synthetic_table=table("data.synthetic_table"),
        point=json.loads(tags.get(AXES_TAG, "{}")),
    )


def find_sweep(client, experiment: str, sweep_run_id: str | None = None):
    """The given sweep run, else the experiment's most recent one."""
    if sweep_run_id:
        try:
            return client.get_run(sweep_run_id)
        except Exception:  # MLflow raises its own RestException / MlflowException types
            raise TrackingError(f"report: no MLflow run {sweep_run_id} at {client.tracking_uri}") from None
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise TrackingError(f"report: no MLflow experiment '{experiment}' at {client.tracking_uri}")
    sweeps = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`{KEY_TAG}` LIKE 'sweep-%'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not sweeps:
        raise TrackingError(f"report: experiment '{experiment}' has no sweep run (run jobs/sweep.py first)")
    return sweeps[0]


def _listed_run_ids(client, sweep_run_id: str) -> list[str] | None:
    if "results.csv" not in {a.path for a in client.list_artifacts(sweep_run_id)}:
        return None
    with tempfile.TemporaryDirectory(prefix="fake2real-report-") as tmp:
        path = client.download_artifacts(sweep_run_id, "results.csv", tmp)
        with open(path, newline="") as handle:
            return [row["run_id"] for row in csv.DictReader(handle)]


def _children(client, experiment_id: str, parent: str) -> list:
    return client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'", max_results=10000)


def _experiment_runs(client, experiment_id: str, sweep_id: str) -> list:
    """Experiments under the sweep, or under its cells when it searched (a cell's search trials
    are left out unless selected: the report shows what the sweep selected, by validation)."""
    runs = []
    for child in _children(client, experiment_id, sweep_id):
        if "train.mixture" in child.data.params:
            runs.append(child)
        elif "mixture" in child.data.params:  # a searched cell
            runs += [
                r for r in _children(client, experiment_id, child.info.run_id)
                if "train.mixture" in r.data.params and (TRIAL_TAG not in r.data.tags or r.data.tags.get(SELECTED_TAG) == "true")
            ]
    return runs


def read_sweep(client, experiment: str, sweep_run_id: str | None = None) -> SweepRuns:
    sweep = find_sweep(client, experiment, sweep_run_id)
    sweep_id = sweep.info.run_id
    listed = _listed_run_ids(client, sweep_id)
    if listed is not None:
        runs = [client.get_run(run_id) for run_id in listed]
    else:
        runs = _experiment_runs(client, sweep.info.experiment_id, sweep_id)
    # Children that are stages, not experiments, have no mixture: keep experiments that finished.
    records = [_record(run) for run in runs if "train.mixture" in run.data.params and TEST_WGA in run.data.metrics]
    if not records:
        raise TrackingError(f"report: sweep run {sweep_id} has no finished experiment yet")
    records.sort(key=lambda r: (ratio_order(r.bias_ratio), r.mixture, r.method, r.seed))
    return SweepRuns(sweep_id, sweep.info.run_name or sweep_id, sweep.info.status, records)

