"""Stopping a job: Ctrl-C (SIGINT) or SIGTERM — what ``ray job stop`` sends, then SIGKILL after
``RAY_JOB_STOP_WAIT_TIME_S`` (3 s by default, Ray 2.60's job supervisor).

While a job runs (``cli.main``), either signal raises ``Interrupted`` in the driver's main thread,
wherever it waits — ``ray.get``, a Tune loop, the wait on a sweep's experiment threads — once: a
second signal is noted and ignored while the job stops (its steps are bounded). ``cli.main`` then
stops the job (docs/design.md §5, "Stopped").

Ray puts handlers of its own in place of these, none of them ever removed:

- ``ray.init`` a SIGTERM handler (``sys.exit(15)``), and its core worker a C handler that prints a
  stack before it (the driver then died of SIGABRT, its runs left RUNNING): ``catch_again`` once
  Ray is up (``runtime.init_ray``);
- Tune's ``Tuner.fit``, on the main thread, a SIGINT handler that ends the search as if it had
  finished (the cell was marked searched on the trials done so far, and its seeds trained), left in
  place after it: a Ctrl-C during the cell's seeds only set a flag nobody read any more (off with
  ``TUNE_DISABLE_SIGINT_HANDLER``);
- Ray Train V2's ``fit``, on the main thread (FFR's stage 1 before a search), a SIGINT handler that
  aborts that run, left bound to it after it ended: later Ctrl-C aborted nothing, the third called
  ``sys.exit(0)`` (a trainer is fitted off the main thread: ``off_main_thread``).

Python's default SIGINT handler would not be enough either: its KeyboardInterrupt ends the main thread,
and Python's exit then waits for the threads of a sweep's experiments, each until its trainer ends.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Callable, TypeVar

SIGNALS = (signal.SIGINT, signal.SIGTERM)
WHAT = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}
TUNE_SIGINT_ENV = "TUNE_DISABLE_SIGINT_HANDLER"

T = TypeVar("T")


class Interrupted(KeyboardInterrupt):
    """The job received ``signum``: it stops, and exits ``128 + signum`` (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(WHAT.get(signum, signal.Signals(signum).name))
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum

    @property
    def line(self) -> str:
        return f"stopped: {self.args[0]}; run the same command again to resume"


_received: list[int] = []  # the signals received while catching, first first
_catching = threading.Event()


def stopping() -> bool:
    """Whether the job received a stop signal: a run its threads leave now was stopped, not failed."""
    return bool(_received)


def received() -> Interrupted | None:
    """The first stop signal received, as the exception it raised (None: none)."""
    return Interrupted(_received[0]) if _received else None


def _handle(signum: int, frame) -> None:
    first = not _received
    _received.append(signum)
    if first and _catching.is_set():
        raise Interrupted(signum)


@contextmanager
def catching():
    """While the block runs (on the main thread), SIGINT and SIGTERM raise ``Interrupted``; the
    handlers before it come back at its end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    tune_before = os.environ.get(TUNE_SIGINT_ENV)
    os.environ[TUNE_SIGINT_ENV] = "1"
    _received.clear()
    _catching.set()
    try:
        catch_again()
        yield
    finally:
        _catching.clear()
        _received.clear()
        for sig, handler in before.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if tune_before is None:
            os.environ.pop(TUNE_SIGINT_ENV, None)
        else:
            os.environ[TUNE_SIGINT_ENV] = tune_before


def catch_again() -> None:
    """Put this module's handlers back in place of any installed since (``ray.init``'s), when
    catching on the main thread."""
    if _catching.is_set() and threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _handle)


def stop_catching() -> None:
    """From here on a signal is noted, not raised: the job is ending (its error is being printed)."""
    _catching.clear()


def off_main_thread(fn: Callable[[], T]) -> T:
    """``fn()``, on a thread of its own when called on the main thread, which waits for it (a
    signal raises there); the thread, waiting on Ray, ends with the job."""
    if threading.current_thread() is not threading.main_thread():
        return fn()
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread as it is
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="fake2real-fit", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
