"""Where a stage's fixed cost goes: Ray Train's own start-up and reports, our loop's, MLflow's.

    python benchmarks/stage_overhead.py                            # Ray Train's poll: 2 s (its default)
    python benchmarks/stage_overhead.py --controller-poll-s 0.2    # what train/stage.py sets

Measured on one local Ray, each ``TorchTrainer.fit`` a fresh worker group as in a sweep:

- Ray Train alone, with train functions that do nothing but what is named: return at once; one
  ``report``; one report with a small checkpoint; ten reports with checkpoints (the per-report
  cost is the difference over nine);
- our stage (``train/stage.run_stage`` on the quick preset's real table) with 1 and with 3
  epochs: the difference is two epochs' work, the rest of the 1-epoch stage is its fixed cost;
- in one process, without Ray: loading the stage's splits, building the model, and an MLflow stage
  run (create, log a metric per epoch, tag, finish) in a sqlite store.

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


def _fit(function, config: dict, storage: str, name: str, workers: int, cpus: float) -> float:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(function, train_loop_config=config, run_config=RunConfig(name=name, storage_path=storage),
                           scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": cpus}))
    started = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - started


def _stage(table: str, epochs: int, storage: str, workers: int, cpus: float, tag: str) -> float:
    from fake2real.sections import TrainConfig
    from fake2real.train.spec import Resources, StageSpec
    from fake2real.train.stage import run_stage

    hparams = {**TrainConfig().real.model_dump(), "epochs": epochs}
    spec = StageSpec(f"overhead-{tag}-{epochs}", (table,), table, "erm", {}, "small_cnn", hparams, seed=0)
    started = time.perf_counter()
    run_stage(spec, Resources(workers, cpus, loader={"mode": "memory"}), storage)
    return time.perf_counter() - started


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
    from fake2real.workspace import Workspace, prepare_real

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
    seconds = {name: [case(i) for i in range(args.repeats)] for name, case in cases.items()}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    per_report = (median["Ray Train, ten reports with checkpoints"] - median["Ray Train, one report with a checkpoint"]) / 9
    per_epoch = (median["our stage, 3 epochs"] - median["our stage, 1 epoch"]) / 2

    print(f"\n{args.workers} worker(s) × {args.cpus_per_worker:g} CPU, controller poll {args.controller_poll_s:g} s, "
          f"median of {args.repeats} fits each; Ray started in {ray_start:.1f} s\n")
    print("| what | seconds |\n|---|---|")
    for name, values in seconds.items():
        print(f"| {name} | {median[name]:.1f} ({', '.join(f'{v:.1f}' for v in values)}) |")
    print(f"| per report with a checkpoint (ten − one, over 9) | {per_report:.2f} |")
    print(f"| per epoch of our stage (3 − 1 epochs, over 2) | {per_epoch:.2f} |")
    print(f"| **fixed cost of our stage** (1 epoch − one epoch's work) | **{median['our stage, 1 epoch'] - per_epoch:.1f}** |")
    for name, value in _in_process(table, root).items():
        print(f"| in one process: {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
