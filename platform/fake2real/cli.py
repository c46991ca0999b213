"""What every ``jobs/*.py`` shares: arguments → config, one-line errors with exit status, and
stopping on Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Callable, NoReturn

from fake2real.config import ExperimentConfig, build_config
from fake2real.errors import Fake2RealError, redact
from fake2real.interrupt import Interrupted, catching, received, stop_catching, stopping
from fake2real.local_paths import resolve_paths
from fake2real.presets import PRESETS, preset


def parse(description: str, argv: list[str] | None = None, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help="YAML experiment config (default: the built-in benchmark)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="named overrides applied before --config")
    parser.add_argument("overrides", nargs="*", metavar="key.path=value", help="e.g. train.real.lr=3e-4")
    if extra:
        extra(parser)
    args = parser.parse_args(argv)
    return args


def load(args) -> ExperimentConfig:
    """The job's config, its local paths absolute: a search trial or a worker runs elsewhere."""
    return resolve_paths(build_config(args.config, args.overrides, base=preset(args.preset)))


def main(fn: Callable[[], object]) -> None:
    """Run ``fn``; a known problem becomes one line on stderr and exit status 2, a failed training
    exit status 1, Ctrl-C or SIGTERM a stopped job (``_stop``: exit status 130 or 143)."""
    # MLflow logs schema set-up of a new sqlite store at INFO on stderr; errors must stay one line.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    with catching():
        try:
            fn()
        except BaseException as exc:
            stop_catching()  # a signal from here on is noted: the job is ending anyway
            if isinstance(exc, KeyboardInterrupt) or stopping():  # whatever the signal made the job raise on its way out
                _stop(received() or Interrupted())
            if not isinstance(exc, Exception):
                raise
            _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    known = _known_cause(exc)
    if known is None:
        from ray.train import TrainingFailedError

        if not isinstance(exc, TrainingFailedError):
            raise exc
    if "ray" in sys.modules:  # workers' lines Ray still forwards must come before the error line, not after
        from fake2real.runtime import stop_ray

        stop_ray()
    sys.stdout.flush()  # what the job printed before comes before its error
    if known is not None:
        print(f"error: {redact(known)}", file=sys.stderr)  # a URI in it may carry a password or a secret key
        sys.exit(2)
    cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    print(f"error: training failed: {redact(cause)[:500]}", file=sys.stderr)
    sys.exit(1)


def _stop(stopped: Interrupted) -> NoReturn:
    """A stopped job: its MLflow runs still RUNNING are marked KILLED — first, as ``ray job stop``
    sends SIGKILL 3 s after its SIGTERM —, Ray is shut down (a local cluster with it; a cluster's
    trainers and trials of this driver end with it), the runs its trials opened meanwhile are
    marked too, and one line is printed, last. Then the process ends at once: threads of the
    driver still wait on their trainers (``experiment.run_experiments``), and Python's exit would
    wait for them. Finished stages, searches and tables stay: running the job again resumes."""
    problems = []

    def kill_runs() -> None:
        if "fake2real.track.mlflow_runs" not in sys.modules:  # no run opened
            return
        from fake2real.track.mlflow_runs import kill_running

        try:
            kill_running()
        except Exception as exc:  # the store did not answer: say so, and stop anyway
            problems.append(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)

    kill_runs()
    if "ray" in sys.modules:
        from fake2real.runtime import stop_ray

        stop_ray(wait_for_lines=False)
    kill_runs()
    line = stopped.line + (f" (MLflow runs may be left RUNNING: {problems[-1][:300]})" if problems else "")
    try:
        sys.stdout.flush()
        print(redact(line), file=sys.stderr, flush=True)
    finally:  # a closed pipe must not keep the job from ending
        os._exit(stopped.status)


def _known_cause(exc: BaseException | None) -> str | None:
    """Our error's message, also when Ray raised it in a task or actor and wrapped it on the way
    back (Ray Data keeps only the remote traceback's text: the last ``fake2real.errors`` line)."""
    seen, first = set(), exc
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Fake2RealError):
            return str(exc).splitlines()[0]
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    found = re.findall(r"fake2real\.errors\.\w+Error: (.+)", str(first))
    return found[-1].strip() if found else None
