"""Where a stage's fixed cost goes: Ray Train's own start-up and reports, our loop's, MLflow's.

    python benchmarks/stage_overhead.py                            # Ray Train's poll: 2 s (its default)
    python benchmarks/stage_overhead.py --controller-poll-s 0.2    # what train/stage.py sets
    python benchmarks/stage_overhead.py --controller-poll-s 0.2 --workers 1   # a single worker: train/local.py

Measured on one local Ray, each ``TorchTrainer.fit`` a fresh worker group as in a sweep; with one
worker, our stage runs as the platform runs it (a Ray task in one of Ray's worker processes, after
one warm-up stage as a sweep's earlier stages would have run; ``train/local.py``) and, for
comparison, the same stage on a ``TorchTrainer``:

- Ray Train alone, with train functions that do nothing but what is named: return at once; one
  ``report``; one report with a small checkpoint; ten reports with checkpoints (the per-report
  cost is the difference over nine);
- our stage (``train/stage.run_stage`` on the quick preset's real table) with 1 and with 3
  epochs: the difference is two epochs' work, the rest of the 1-epoch stage is its fixed cost;
- in one process, without Ray: loading the stage's splits, building the model, and an MLflow stage
  run (create, log a metric per epoch, tag, finish) in a sqlite store.

Each fit's wall seconds and the CPU-seconds the whole machine spent meanwhile (``/proc/stat``,
Linux): a fit's own processes (Ray Train's controller, its helpers, the workers) all count, so
"CPU-seconds / cores" is how much faster a stage could go with other stages beside it.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from fake2real.train.stage import CONTROLLER_POLL_ENV


def _machine_cpu_s() -> float:
    """CPU-seconds (user + nice + system) the machine has spent since boot."""
    with open("/proc/stat") as stat:
        user, nice, system = (int(v) for v in stat.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def _timed(run) -> tuple[float, float]:
    """(wall seconds, machine CPU-seconds) of ``run()``."""
    wall, cpu = time.perf_counter(), _machine_cpu_s()
    run()
    return time.perf_counter() - wall, _machine_cpu_s() - cpu


def _ray_processes() -> dict[int, tuple[str, float]]:
    """pid → (Ray's process title, e.g. ``ray::TrainController``, CPU-seconds so far) of this machine's Ray workers."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                title = cmdline.read().split(b"\0")[0].decode(errors="replace")
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if title.startswith("ray::"):
            found[int(entry.name)] = (title.split(".")[0].split(" ")[0], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return found


def _cpu_by_process(run, interval_s: float = 0.1) -> dict[str, float]:
    """CPU-seconds of the Ray worker processes that ``run()`` starts, summed by process title
    (sampled every ``interval_s``: a process's last interval before it exits is missed)."""
    import threading

    before, seen, stop = _ray_processes(), {}, threading.Event()

    def sample():
        while not stop.is_set():
            for pid, (title, cpu) in _ray_processes().items():
                seen[pid] = (title, cpu - before.get(pid, (title, 0.0))[1])
            stop.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        stop.set()
        sampler.join()
    totals: dict[str, float] = {}
    for title, cpu in seen.values():
        totals[title] = totals.get(title, 0.0) + cpu
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _noop(config: dict) -> None:
    pass


def _reports(config: dict) -> None:
    import ray.train

    for index in range(config["reports"]):
        if not config["checkpoint"]:
            ray.train.report({"index": index})
            continue
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if ray.train.get_context().get_world_rank() == 0:
                Path(folder, "state.bin").write_bytes(os.urandom(200_000))  # about a small CNN's state
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report({"index": index}, checkpoint=checkpoint)


def _fit(function, config: dict, storage: str, name: str, workers: int, cpus: float) -> tuple[float, float]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(function, train_loop_config=config, run_config=RunConfig(name=name, storage_path=storage),
                           scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": cpus}))
    return _timed(trainer.fit)


def _stage(table: str, epochs: int, storage: str, workers: int, cpus: float, tag: str, trainer: bool = False) -> tuple[float, float]:
    """Our stage as the platform runs it, or (``trainer``) on a ``TorchTrainer`` whatever its workers."""
    from fake2real.sections import TrainConfig
    from fake2real.train.spec import Resources, StageSpec
    from fake2real.train.stage import _fit, run_stage

    hparams = {**TrainConfig().real.model_dump(), "epochs": epochs}
    spec = StageSpec(f"overhead-{tag}-{epochs}{'-trainer' if trainer else ''}", (table,), table, "erm", {}, "small_cnn", hparams, seed=0)
    resources = Resources(workers, cpus, loader={"mode": "memory"})
    return _timed(lambda: _fit(spec, resources, storage, [], False) if trainer else run_stage(spec, resources, storage))


def _in_process(table: str, root: Path) -> dict[str, float]:
    from fake2real.data.table import read_info
    from fake2real.track.mlflow_runs import Tracker
    from fake2real.train.models import build_model
    from fake2real.train.splits import read_split

    times = {}
    started = time.perf_counter()
    for split in ("train", "val", "test"):
        read_split(table, split, read_info(table).num_biases, None)
    times["loading the splits (train, val, test)"] = time.perf_counter() - started
    started = time.perf_counter()
    build_model("small_cnn", 2)
    times["building the model"] = time.perf_counter() - started
    tracker = Tracker(f"sqlite:///{root / 'mlflow.db'}", "overhead", root / "mlartifacts")
    tracker.finish(tracker.run_for("warm-up", "warm-up"))  # the store's schema is made once per store
    started = time.perf_counter()
    run = tracker.run_for("stage", "stage", params={"stage": "real"})
    for epoch in range(8):
        tracker.log_metrics(run, {"val/worst_group_accuracy": 0.5}, step=epoch)
    tracker.client.set_tag(run, "fake2real.checkpoint", "x")
    tracker.finish(run)
    times["an MLflow stage run (create, 8 epochs of metrics, tag, finish)"] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--controller-poll-s", type=float, default=2.0, help="Ray Train's controller poll interval (its default: 2 s)")
    args = parser.parse_args()
    # Before Ray starts and before any trainer: every fit below polls at this interval.
    os.environ[CONTROLLER_POLL_ENV] = str(args.controller_poll_s)

    from fake2real.config import build_config
    from fake2real.presets import preset
    from fake2real.runtime import init_ray
    from fake2real.prepare.workspace import Workspace, prepare_real

    root = Path(tempfile.mkdtemp(prefix="fake2real-overhead-"))
    config = build_config(overrides={"output_dir": str(root / "out")}, base=preset("quick"))
    table = str(prepare_real(config, Workspace.create(config)))
    started = time.perf_counter()
    init_ray()
    ray_start = time.perf_counter() - started
    storage, shape = str(root / "runs"), (args.workers, args.cpus_per_worker)
    cases = {
        "Ray Train, a train function that returns at once": lambda i: _fit(_noop, {}, storage, f"noop-{i}", *shape),
        "Ray Train, one report": lambda i: _fit(_reports, {"reports": 1, "checkpoint": False}, storage, f"r1-{i}", *shape),
        "Ray Train, one report with a checkpoint": lambda i: _fit(_reports, {"reports": 1, "checkpoint": True}, storage, f"c1-{i}", *shape),
        "Ray Train, ten reports with checkpoints": lambda i: _fit(_reports, {"reports": 10, "checkpoint": True}, storage, f"c10-{i}", *shape),
        "our stage, 1 epoch": lambda i: _stage(table, 1, storage, *shape, tag=str(i)),
        "our stage, 3 epochs": lambda i: _stage(table, 3, storage, *shape, tag=str(i)),
    }
    if args.workers == 1:  # the platform's path is train/local.py: the TorchTrainer's beside it
        cases["our stage on a TorchTrainer, 1 epoch"] = lambda i: _stage(table, 1, storage, *shape, tag=str(i), trainer=True)
        cases["our stage on a TorchTrainer, 3 epochs"] = lambda i: _stage(table, 3, storage, *shape, tag=str(i), trainer=True)
        # Stages of a sweep find Ray's worker process warm (torch imported): so do the measured ones.
        warm_up = _stage(table, 1, storage, *shape, tag="warm-up")[0]
    timed = {name: [case(i) for i in range(args.repeats)] for name, case in cases.items()}
    seconds = {name: [wall for wall, _ in values] for name, values in timed.items()}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in timed.items()}
    per_report = (median["Ray Train, ten reports with checkpoints"] - median["Ray Train, one report with a checkpoint"]) / 9

    print(f"\n{args.workers} worker(s) × {args.cpus_per_worker:g} CPU, controller poll {args.controller_poll_s:g} s, "
          f"median of {args.repeats} fits each; Ray started in {ray_start:.1f} s"
          + (f"; the warm-up stage (a fresh worker process) took {warm_up:.1f} s" if args.workers == 1 else "") + "\n")
    print(f"| what | seconds | machine CPU-seconds ({os.cpu_count()} cores) |\n|---|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {median[name]:.1f} ({', '.join(f'{v:.1f}' for v in values)}) | {cpu[name]:.1f} |")
    print(f"| per report with a checkpoint (ten − one, over 9) | {per_report:.2f} | |")
    for stage in ("our stage", "our stage on a TorchTrainer"):
        if f"{stage}, 1 epoch" not in median:
            continue
        one, three = f"{stage}, 1 epoch", f"{stage}, 3 epochs"
        per_epoch, per_epoch_cpu = (median[three] - median[one]) / 2, (cpu[three] - cpu[one]) / 2
        print(f"| per epoch of {stage} (3 − 1 epochs, over 2) | {per_epoch:.2f} | {per_epoch_cpu:.1f} |")
        print(f"| **fixed cost of {stage}** (1 epoch − one epoch's work) | **{median[one] - per_epoch:.1f}** | "
              f"**{cpu[one] - per_epoch_cpu:.1f}** |")
    for name, value in _in_process(table, root).items():
        print(f"| in one process: {name} | {value:.2f} | |")
    # Where a fit's CPU goes: the Ray processes one more no-op fit starts, by title.
    by_process = _cpu_by_process(lambda: _fit(_noop, {}, storage, "noop-by-process", *shape))
    print("\nOne more no-op fit, CPU-seconds of the Ray processes it ran, by title (sampled every 0.1 s):\n")
    print("| process | CPU-seconds |\n|---|---|")
    for title, value in by_process.items():
        if value >= 0.05:
            print(f"| `{title}` | {value:.2f} |")


if __name__ == "__main__":
    main()
