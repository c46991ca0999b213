"""A job's error line is the last thing it prints: lines Ray still forwards from workers (a
failed worker's traceback) come before it, and Ray Train's traceback of one of our errors is not
forwarded at all (docs/bad_inputs.md). No Ray starts: its log thread is played by a thread that
emits through Ray's own dispatcher, as ``Worker.print_logs`` does, until ``ray.shutdown``."""

from __future__ import annotations

import logging
import sys
import threading
import time

import pytest
import ray
from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
from ray.train import TrainingFailedError

from fake2real import cli, runtime
from fake2real.errors import ConfigError, TrainingError

NAN = "stage real: the training loss is nan in epoch 0 (lr 1e+30, erm); the stage stopped: lower its learning rate"
FORWARDED = ["(RayTrainWorker pid=11) Error in training function:", "(RayTrainWorker pid=11) Traceback (most recent call last):",
             "(RayTrainWorker pid=11) ValueError: boom"]


@pytest.fixture
def forwarding(monkeypatch):
    """Ray up, its log thread forwarding ``FORWARDED`` a line every 0.2 s once started, until ``ray.shutdown``."""
    stopped = threading.Event()
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", stopped.set)
    dispatcher.add_handler("test_print", lambda batch: print(*batch["lines"], sep="\n", file=sys.stderr))

    def forward():
        for line in FORWARDED:
            time.sleep(0.2)
            if stopped.is_set():
                return
            dispatcher.emit({"lines": [line], "is_err": True, "pid": 11})

    yield lambda: threading.Thread(target=forward, daemon=True).start()
    dispatcher.remove_handler("test_print")


@pytest.mark.parametrize("error, line, status", [
    (TrainingError(NAN), f"error: {NAN}", 2),
    (TrainingFailedError("Training failed due to worker errors:\nValueError: boom"), "error: training failed: ValueError: boom", 1),
])
def test_lines_ray_forwards_after_the_error_are_printed_before_its_line(forwarding, capsys, error, line, status):
    def fail():
        forwarding()  # the workers' lines are on their way when the driver gets the error
        raise error

    with pytest.raises(SystemExit) as exit:
        cli.main(fail)
    time.sleep(1.0)  # a line still on its way would be printed by now
    assert exit.value.code == status
    assert capsys.readouterr().err.splitlines() == [*FORWARDED, line]


def test_a_job_that_never_started_ray_prints_its_error_at_once(monkeypatch, capsys):
    monkeypatch.setattr(ray, "shutdown", lambda: pytest.fail("ray.shutdown called without Ray"))

    def fail():
        raise ConfigError("config: train.lrr: unknown key")

    started = time.monotonic()
    with pytest.raises(SystemExit):
        cli.main(fail)
    assert capsys.readouterr().err == "error: config: train.lrr: unknown key\n"
    assert time.monotonic() - started < runtime.FORWARD_QUIET_S


def test_ray_train_logs_no_traceback_of_our_error_in_a_worker_and_keeps_any_other():
    from ray.train.v2._internal.util import construct_user_exception_with_traceback

    logger = logging.getLogger(runtime.RAY_TRAIN_USER_ERROR_LOGGER)
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logger.addHandler(handler)
    try:
        runtime.quiet_own_tracebacks()  # as a training worker's loop does first
        for error in (TrainingError(NAN), ConfigError("config: train.loader.stream_dir: cannot create /x: File exists"), ValueError("boom")):
            try:
                raise error
            except Exception as exc:
                construct_user_exception_with_traceback(exc)  # what Ray Train's worker calls on it
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(runtime._not_ours)
    assert len(logged) == 1 and logged[0].rstrip().endswith("ValueError: boom"), logged
