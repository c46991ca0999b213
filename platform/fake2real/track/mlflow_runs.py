"""MLflow runs for experiments and their stages, through an explicit ``MlflowClient``.

Default store: ``sqlite:///<cwd>/mlflow.db`` (MLflow 3's file store raises); ``tracking.uri``
or ``$MLFLOW_TRACKING_URI`` override it. Runs are found again by a ``fake2real.key`` tag (a hash
of their config), so a re-run resumes logging into the same run instead of creating a twin.
Nesting: ``mlflow.parentRunId`` (sweep → [cell →] experiment or trial → stage); each run's level
is its ``fake2real.level`` tag (run and tag names: ``names.py``).

Metric names (all MLflow-safe):
  ``{split}/worst_group_accuracy``, ``{split}/balanced_accuracy``, ``{split}/overall_accuracy``,
  ``{split}/group/y{Y}_b{B}/accuracy`` for split in val, test, synthetic_test; ``train/loss``,
  ``train/images_per_second_per_worker``; ``selected_epoch``; on experiment runs also
  ``probe/g_leakage_auroc`` and a post-hoc method's own (``dfr/C``); on a searched cell's run
  (search.py) the seeds' mean of ``{test,val}/worst_group_accuracy`` and ``test/balanced_accuracy``,
  each with ``…_ci95``, and ``search/{trials,trial_epochs,best_trial_val_wga}``.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from fake2real.errors import TrackingError, redact
from fake2real.interrupt import stopping
from fake2real.track.names import (
    EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, KEY_TAG, LEVEL_TAG, PARENT_TAG, RUN_NAME_TAG, RUNS_PAGE, TRIAL_TAG, stage_run_id_tag,
)


def resolve_uri(configured: str | None) -> str:
    if configured:  # a job's config: made absolute already (local_paths.resolve_paths)
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):  # a search trial gets the driver's store, as resolved here
        return absolute_sqlite(os.environ["MLFLOW_TRACKING_URI"])
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def absolute_sqlite(uri: str) -> str:
    """``sqlite:///relative.db`` with its file made absolute against the current folder; any other
    URI as it is. A search trial runs in a folder of its own, where a relative file is another store."""
    if not uri.startswith("sqlite:///"):
        return uri
    database, sep, query = uri.removeprefix("sqlite:///").partition("?")
    if not database or database == ":memory:" or database.startswith("/"):
        return uri
    return f"sqlite:///{Path(database).absolute()}{sep}{query}"


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (None for any other store, or an in-memory one)."""
    if not uri.startswith("sqlite:///"):  # sqlite://: in memory
        return None
    database = uri.removeprefix("sqlite:///").split("?", 1)[0]  # sqlite:////abs/path, sqlite:///relative
    return Path(database).absolute() if database and database != ":memory:" else None


def existing_store(uri: str) -> str:
    """``uri``, when it is a store to read from: a sqlite file that does not exist is refused
    (MLflow would create an empty store there, e.g. for a mistyped path)."""
    path = sqlite_file(uri)
    if path is not None and not path.is_file():
        raise TrackingError(f"no MLflow store at {path}")
    return uri


def runs_page(server: str, experiment_id: str) -> str:
    """The MLflow UI's page of an experiment's runs table (not its GenAI overview)."""
    return f"{server.rstrip('/')}/{RUNS_PAGE.format(experiment_id=experiment_id)}"


@contextmanager
def fail_fast():
    """No retries while probing: an unreachable server must fail in seconds, not minutes."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _local_artifact_root(artifact_root: str | os.PathLike) -> Path:
    text = str(artifact_root)  # a Path, a path string, or a workspace Location (local or URI)
    return Path.cwd() / "mlartifacts" if "://" in text and not text.startswith("file://") else Path(text.removeprefix("file://")).absolute()


class Tracker:
    """One experiment in one tracking store."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | os.PathLike, wait_s: float = 0.0):
        """``artifact_root``: where a new experiment of a non-server store keeps its artifacts; a URI
        (a remote workspace's ``…/mlartifacts``) is replaced by ``<cwd>/mlartifacts``: MLflow's own
        object-store clients are not configured here, and a server stores artifacts itself.
        ``wait_s``: how long to try again a store that does not answer (a job's first contact
        fails at once; a trial started while the server restarts waits for it)."""
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.experiment_name = experiment
        self.artifact_root = artifact_root
        deadline = time.monotonic() + wait_s
        while True:
            try:
                with fail_fast():
                    self.client = MlflowClient(tracking_uri=uri)
                    self.experiment_id = self._experiment_id()
                return
            except Exception as exc:  # MLflow raises many types here; all mean "cannot use this store"
                if time.monotonic() < deadline:
                    time.sleep(2)
                    continue
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                # MLflow's own message may repeat the URI: the whole line is redacted.
                raise TrackingError(redact(f"tracking: cannot use MLflow at {uri}: {first[:300]}")) from None

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return found.experiment_id
        # Artifacts default to ./mlruns of whatever cwd a process has: pin them.
        location = None if self.uri.startswith(("http://", "https://", "databricks")) else _local_artifact_root(self.artifact_root).as_uri()
        return self.client.create_experiment(self.experiment_name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})

    def run_for(self, key: str, name: str, parent_id: str | None = None, params: dict | None = None, tags: dict | None = None,
                former_key: str | None = None) -> str:
        """The run tagged with ``key``, created if there is none yet. ``tags`` (with the run's
        ``fake2real.level``) tag a new run; a run found again only gets a level it lacks. Without
        a run of ``key``, one tagged ``former_key`` (what it was keyed by before) is found, and
        tagged ``key`` from now on."""
        existing = self._tagged(key)
        if not existing and former_key:
            existing = self._tagged(former_key)
            if existing:
                self.client.set_tag(existing[0].info.run_id, KEY_TAG, key)
        if existing:
            run_id = existing[0].info.run_id
            _opened(self, run_id)
            self.client.update_run(run_id, status="RUNNING")
            if tags and LEVEL_TAG in tags and LEVEL_TAG not in existing[0].data.tags:  # logged before levels existed
                self.client.set_tag(run_id, LEVEL_TAG, tags[LEVEL_TAG])
            return run_id
        all_tags = {KEY_TAG: key, RUN_NAME_TAG: name, **{k: redact(str(v)) for k, v in (tags or {}).items()}}
        if parent_id:
            all_tags[PARENT_TAG] = parent_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name)
        _opened(self, run.info.run_id)
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def _tagged(self, key: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'", max_results=1)

    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        # Params name locations (output_dir, dataset.root, tables, tracking.uri): never their credentials.
        flat = {k: redact(str(v))[:6000] for k, v in _flatten(params).items()}
        items = [Param(k, v) for k, v in sorted(flat.items())]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        """A tag, its URIs without credentials (a checkpoint's URI is under output_dir)."""
        self.client.set_tag(run_id, key, redact(str(value)))

    def log_metrics(self, run_id: str, metrics: dict, step: int | None = None) -> None:
        log_metrics(self.client, run_id, metrics, step)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    @contextmanager
    def failed_on_error(self, run_id: str | None):
        """A run left by an exception is marked FAILED, KILLED when the job was stopped (a signal,
        ``interrupt.py``: also in a thread whose trainer ends with it), then the error goes on."""
        try:
            yield
        except BaseException as exc:
            if run_id:
                self.finish(run_id, "KILLED" if isinstance(exc, KeyboardInterrupt) or stopping() else "FAILED")
            raise

    def _children(self, parent: str) -> list:
        return self.client.search_runs([self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")

    def close_stopped_trials(self, cell_run_id: str, stopped: set[str]) -> None:
        """Runs of trials Tune stopped (ASHA) never finished themselves: mark them KILLED. Such a run
        is still RUNNING, or FAILED when the stop reached its training as an error first; ``stopped``
        holds the ids of the trials Tune reports without an error, so a trial that failed stays FAILED."""
        for run in self._children(cell_run_id):
            if TRIAL_TAG not in run.data.tags:
                continue
            to_kill = ("RUNNING", "FAILED") if run.data.tags[TRIAL_TAG] in stopped else ("RUNNING",)
            if run.info.status in to_kill:
                for stage in self._children(run.info.run_id):
                    if stage.info.status in to_kill:
                        self.finish(stage.info.run_id, "KILLED")
                self.finish(run.info.run_id, "KILLED")

    def finish_stage_runs(self, run_id: str, stages: list[str]) -> None:
        """The runs of ``stages`` a finished experiment used, FINISHED as it is. Seed 0's experiment
        may be the selected trial's run, reusing its stages: a stopped trial's stage was KILLED by
        ``close_stopped_trials``, or FAILED by the trial's own process ending after the seed reused it."""
        tags = self.client.get_run(run_id).data.tags
        for stage in stages:
            stage_run = tags.get(stage_run_id_tag(stage))
            if stage_run and self.client.get_run(stage_run).info.status != "FINISHED":
                self.finish(stage_run)


# Every run this process opened (``run_for``), by store and experiment: a job stopped by a signal
# marks those still RUNNING KILLED, and their RUNNING descendants (``kill_running``).
_OPENED: dict[tuple[str, str], set[str]] = {}
_OPENED_LOCK = threading.Lock()


def _opened(tracker: Tracker, run_id: str) -> None:
    with _OPENED_LOCK:
        _OPENED.setdefault((tracker.uri, tracker.experiment_id), set()).add(run_id)


def kill_running() -> int:
    """Mark KILLED every RUNNING run this process opened, or that descends from one (a search
    trial's, opened in a process of its own); how many. Without MLflow's retries: a stopping job
    must not wait minutes for a server that does not answer."""
    from mlflow.tracking import MlflowClient

    with _OPENED_LOCK:
        opened = {place: set(ids) for place, ids in _OPENED.items()}
    killed = 0
    with fail_fast():
        for (uri, experiment_id), ids in opened.items():
            client = MlflowClient(tracking_uri=uri)
            for run_id in _running_under(client, experiment_id, ids):
                client.set_terminated(run_id, status="KILLED")
                killed += 1
    return killed


def _running_under(client, experiment_id: str, roots: set[str]) -> list[str]:
    """The RUNNING runs of the experiment that are in ``roots`` or descend from one of them."""
    running, token = {}, None
    while True:
        page = client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000,
                                  page_token=token)
        running.update({run.info.run_id: run.data.tags.get(PARENT_TAG) for run in page})
        token = page.token
        if not token:
            break
    parents: dict[str, str | None] = dict(running)

    def under(run_id: str | None, depth: int = 0) -> bool:
        if run_id is None or depth > 10:
            return False
        if run_id in roots:
            return True
        if run_id not in parents:  # a finished ancestor: its own parent is asked once
            try:
                parents[run_id] = client.get_run(run_id).data.tags.get(PARENT_TAG)
            except Exception:  # deleted meanwhile: no ancestor of ours through it
                parents[run_id] = None
        return under(parents[run_id], depth + 1)

    return [run_id for run_id in running if under(run_id)]


def log_metrics(client, run_id: str, metrics: dict, step: int | None) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(key, float(value), now, step if step is not None else 0)
        for key, value in sorted(metrics.items())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    for start in range(0, len(items), 500):
        client.log_batch(run_id, metrics=items[start : start + 500])


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
