"""Where a finished sweep's time went, from its MLflow store: time inside stages and what is left.

    python benchmarks/sweep_time.py --tracking-uri sqlite:///$PWD/mlflow.db --wall-s 7200 --at-once 2

For every stage run (``fake2real.level = stage``): its time from start to its last logged metric
(a stage Tune stopped early is closed later, so its end time would overstate it), less any pause
between two of its reports longer than ``--max-gap-s`` (a job stopped and resumed), the epochs it
trained (``train/loss`` is logged once per epoch) and whether it belongs to a search trial or to
an experiment run. Summed, against ``wall × at-once``: the share of the machine the stages held.
What is left is the driver's work between stages (searches starting, results written, MLflow)
plus the idle slots when fewer than ``at-once`` stages were ready.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
from collections import defaultdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--wall-s", type=float, required=True, help="the sweep's measured wall time (sum of its sittings)")
    parser.add_argument("--at-once", type=int, default=2, help="stages the machine trains at once")
    parser.add_argument("--max-gap-s", type=float, default=600.0,
                        help="a longer pause between two reports of a stage is a stopped job, not training (default 600)")
    args = parser.parse_args()

    from mlflow.tracking import MlflowClient

    from fake2real.errors import redact
    from fake2real.track.names import LEVEL_TAG, PARENT_TAG, STAGE, TRIAL, VAL_WGA

    client = MlflowClient(args.tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=50000)
    level = {run.info.run_id: run.data.tags.get(LEVEL_TAG) for run in runs}
    seconds, epochs, count = defaultdict(float), defaultdict(int), defaultdict(int)
    for run in runs:
        if run.data.tags.get(LEVEL_TAG) != STAGE:
            continue
        kind = "search trials" if level.get(run.data.tags.get(PARENT_TAG)) == TRIAL else "experiments"
        history = client.get_metric_history(run.info.run_id, "train/loss")
        # Validation WGA is logged at the start, every epoch and with the selected model: its last
        # time is the stage's last report.
        stamps = sorted([run.info.start_time, *(m.timestamp for m in client.get_metric_history(run.info.run_id, VAL_WGA))])
        if len(stamps) == 1:
            continue
        # A stage stopped with its job and resumed in a later sitting: the pause is not its time.
        gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
        seconds[kind] += sum(gap for gap in gaps if gap <= args.max_gap_s * 1000) / 1000
        epochs[kind] += len(history)
        count[kind] += 1
    if not count:
        raise SystemExit(f"error: no stage runs with metrics in {redact(args.tracking_uri)}")  # a URI may hold a password
    if args.wall_s <= 0 or args.at_once < 1:
        raise SystemExit("error: --wall-s must be > 0 and --at-once ≥ 1")
    capacity = args.wall_s * args.at_once
    print("| stages of | runs | epochs trained | stage hours | share of wall × at-once |")
    print("|---|---|---|---|---|")
    for kind in sorted(seconds):
        print(f"| {kind} | {count[kind]} | {epochs[kind]} | {seconds[kind] / 3600:.2f} | {seconds[kind] / capacity:.0%} |")
    total = sum(seconds.values())
    print(f"| all | {sum(count.values())} | {sum(epochs.values())} | {total / 3600:.2f} | {total / capacity:.0%} |")
    print(f"\nwall {args.wall_s / 3600:.2f} h × {args.at_once} at once = {capacity / 3600:.2f} slot-hours; "
          f"{(capacity - total) / 3600:.2f} outside stages ({(capacity - total) / capacity:.0%})")


if __name__ == "__main__":
    main()
