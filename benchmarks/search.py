"""What ASHA saves, and what sharing FFR's stage 1 saves, measured on the built-in benchmark.

    python benchmarks/search.py                       # one cell (ffr/groupdro, r = 0.99), 8 trials
    python benchmarks/search.py --trials 16 --method erm

Runs the same cell's search twice with the same budget (trials, TPE seed, epochs range): with
ASHA early stopping and without (FIFO). Reports trial-epochs spent, wall time, and the best
validation WGA reached. Then, from the measured wall time of FFR's stage 1 and of an average
trial, the cost of the paper preset's grid with stage 1 shared (once per dataset × r × seed)
versus trained again in every trial. Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fake2real.config import build_config
from fake2real.presets import PRESETS
from fake2real.runtime import init_ray
from fake2real.search import search_cell
from fake2real.sweep import search_cells
from fake2real.track.mlflow_runs import Tracker
from fake2real.workspace import Workspace, prepare_real


def stage_seconds(tracker: Tracker, name: str) -> list[float]:
    runs = tracker.client.search_runs([tracker.experiment_id], filter_string=f"attributes.run_name = '{name}'", max_results=1000)
    return [(r.info.end_time - r.info.start_time) / 1000 for r in runs if r.info.end_time]


def run(args, asha: bool, root: Path) -> dict:
    config = build_config(overrides={
        "output_dir": str(root / "out"),
        "tracking": {"uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "search-benchmark"},
        "dataset": {"bias_ratio": args.bias_ratio},
        "train": {"num_workers": 1, "real": {"epochs": args.epochs}},
        "sweep": {"mixtures": ["ffr"], "methods": [args.method], "seeds": [0],
                  "search": {"num_samples": args.trials, "asha": asha, "seed": 0, "max_concurrent_trials": 1}},
    })
    workspace = Workspace.create(config)
    tracker = Tracker(config.tracking.uri, config.tracking.experiment, workspace.artifacts)
    prepare_real(config, workspace)
    init_ray()
    (cell,) = search_cells(config)
    cell_run = tracker.run_for(f"bench-{asha}", f"cell-{'asha' if asha else 'fifo'}")
    started = time.perf_counter()
    found = search_cell(cell, tracker, cell_run, workspace.runs)
    seconds = time.perf_counter() - started
    stage1 = stage_seconds(tracker, "stage1_synthetic")
    trials = stage_seconds(tracker, "stage2_real")
    return {"asha": asha, "seconds": seconds, "trial_epochs": found.trial_epochs, "best_val_wga": found.best_val_wga,
            "trials": found.trials, "stage1_seconds": stage1[0] if stage1 else float("nan"),
            "trial_seconds": sum(trials) / max(1, len(trials))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--method", default="groupdro")
    parser.add_argument("--bias-ratio", type=float, default=0.99)
    parser.add_argument("--epochs", type=int, default=8, help="upper end of the searched epochs")
    args = parser.parse_args()
    rows = []
    for asha in (True, False):
        with tempfile.TemporaryDirectory(prefix="f2r-search-bench-") as root:
            rows.append(run(args, asha, Path(root)))
            print(rows[-1], flush=True)

    print(f"\n### Search: ASHA vs FIFO (ffr/{args.method}, r = {args.bias_ratio}, {args.trials} trials, epochs ≤ {args.epochs})\n")
    print("| scheduler | trials | trial-epochs | wall time (s) | best val WGA |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {'ASHA' if row['asha'] else 'FIFO'} | {row['trials']} | {row['trial_epochs']} | {row['seconds']:.0f} | {row['best_val_wga']:.3f} |")

    # The paper preset's grid: stage 1 is per (r, seed); cells of FFR-like mixtures × methods × trials use it.
    paper = PRESETS["paper"]["sweep"]
    stage1, trial = rows[0]["stage1_seconds"], rows[1]["trial_seconds"]
    users = len(paper["methods"]) * paper["search"]["num_samples"] + len(paper["methods"])  # trials + the selected seed-0 runs
    per_group_shared = stage1 + users * trial
    per_group_repeated = users * (stage1 + trial)
    print(f"\nFFR stage 1 here: {stage1:.0f} s; an average FIFO trial (stage 2): {trial:.0f} s.")
    print(f"Paper preset, per (dataset, r, seed) and FFR mixture: {users} stage-2 runs "
          f"({len(paper['methods'])} methods × {paper['search']['num_samples']} trials + the selected runs).")
    print(f"Stage 1 shared: {per_group_shared / 3600:.2f} h; trained in every run: {per_group_repeated / 3600:.2f} h "
          f"→ sharing saves {1 - per_group_shared / per_group_repeated:.0%} of that group's training time.")


if __name__ == "__main__":
    main()
