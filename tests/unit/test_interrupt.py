"""Ctrl-C or SIGTERM stops a job (``cli.main``, ``interrupt.py``), without Ray: a job whose
experiment thread waits on a trainer that never ends, as a sweep's do (``run_experiments``), in
a subprocess that signals itself. The stop with Ray and Tune: tests/integration/test_stop.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fake2real import interrupt
from fake2real.interrupt import Interrupted

REPO = Path(__file__).resolve().parents[2]

JOB = """
import os, signal, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from mlflow.tracking import MlflowClient
from fake2real import cli
from fake2real.track.mlflow_runs import Tracker

uri, artifacts, signame = sys.argv[1:]

def job():
    tracker = Tracker(uri, "fake2real", artifacts)
    other = MlflowClient(uri)  # another process: a search trial, and another job
    other.create_run(tracker.experiment_id, run_name="another job's run")
    sweep = tracker.run_for("sweep-key", "sweep")
    with tracker.failed_on_error(sweep):
        done = tracker.run_for("done-key", "finished experiment", sweep)
        tracker.finish(done)
        cell = tracker.run_for("cell-key", "cell", sweep)
        trial = other.create_run(tracker.experiment_id, run_name="trial", tags={"mlflow.parentRunId": cell})
        other.create_run(tracker.experiment_id, run_name="trial/stage", tags={"mlflow.parentRunId": trial.info.run_id})

        def experiment():
            run = tracker.run_for("experiment-key", "experiment", cell)
            with tracker.failed_on_error(run):
                time.sleep(600)  # its trainer: it never ends by itself

        running = ThreadPoolExecutor(1).submit(experiment)
        print("training", flush=True)
        threading.Timer(1.0, os.kill, (os.getpid(), getattr(signal, signame))).start()
        running.result()

cli.main(job)
"""


@pytest.mark.parametrize("signame, status, what", [("SIGINT", 130, "interrupted (Ctrl-C)"), ("SIGTERM", 143, "terminated (SIGTERM)")])
def test_a_signal_stops_the_job_at_once_and_marks_its_runs_killed(tmp_path, signame, status, what):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    started = time.monotonic()
    job = subprocess.run([sys.executable, "-c", JOB, uri, str(tmp_path / "artifacts"), signame], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "platform")})
    assert job.returncode == status, job.stderr[-3000:]
    assert job.stdout.splitlines() == ["training"]
    assert job.stderr.splitlines()[-1] == f"stopped: {what}; run the same command again to resume", job.stderr[-3000:]
    assert time.monotonic() - started < 60  # not the 600 s its experiment thread waits

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("fake2real").experiment_id])
    status_of = {run.info.run_name: run.info.status for run in runs}
    assert status_of == {
        "sweep": "KILLED", "cell": "KILLED", "experiment": "KILLED", "trial": "KILLED", "trial/stage": "KILLED",
        "finished experiment": "FINISHED", "another job's run": "RUNNING",
    }


def test_only_the_first_signal_raises_and_the_handlers_before_come_back():
    before = signal.getsignal(signal.SIGINT)
    with interrupt.catching():
        assert os.environ[interrupt.TUNE_SIGINT_ENV] == "1"  # Tune's own handler would end a search as if it had finished
        with pytest.raises(Interrupted) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert (raised.value.signum, raised.value.status) == (signal.SIGTERM, 143)
        os.kill(os.getpid(), signal.SIGINT)  # while the job stops: noted, not raised
        time.sleep(0.1)
        assert interrupt.stopping() and interrupt.received().signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGINT) is before
    assert interrupt.TUNE_SIGINT_ENV not in os.environ
    assert not interrupt.stopping()  # the next job in this process starts afresh


def test_a_trainer_is_fitted_off_the_main_thread():
    """Ray Train V2 puts a SIGINT handler of its own in place of the job's when ``fit`` runs on the main thread."""
    assert interrupt.off_main_thread(threading.current_thread) is not threading.main_thread()
    with pytest.raises(ValueError, match="boom"):
        interrupt.off_main_thread(lambda: (_ for _ in ()).throw(ValueError("boom")))
