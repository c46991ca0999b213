"""What ASHA saves, and what sharing FFR's stage 1 saves, measured on the built-in benchmark.

    python benchmarks/search.py                       # one cell (ffr/groupdro, r = 0.99), 8 trials
    python benchmarks/search.py --trials 16 --method erm

Runs the same cell's search twice with the same budget (trials, TPE seed, epochs range): with
ASHA early stopping and without (FIFO), one trial at a time. Reports trial-epochs spent, wall
time, and the best validation WGA reached. Then, from the measured wall time of FFR's stage 1
and of an average FIFO trial, the cost of the paper preset's FFR cells with stage 1 shared (once
per dataset × r × seed) versus trained again for every stage-2 run. Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fake2real.config import build_config
from fake2real.run.experiment import train_shared_stages
from fake2real.presets import PRESETS
from fake2real.runtime import init_ray
from fake2real.run.search import search_cell
from fake2real.run.sweep_plan import search_cells
from fake2real.track.mlflow_runs import Tracker
from fake2real.track.names import CELL, LEVEL_TAG
from fake2real.prepare.workspace import Workspace, prepare_real


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
    cell_run = tracker.run_for(f"bench-{asha}", f"cell-{'asha' if asha else 'fifo'}", tags={LEVEL_TAG: CELL})
    started = time.perf_counter()
    train_shared_stages(cell, tracker, cell_run)  # the tables and FFR's stage 1
    stage1 = time.perf_counter() - started
    found = search_cell(cell, tracker, cell_run, workspace.runs)  # stage 1 reused from here on
    seconds = time.perf_counter() - started - stage1
    return {"asha": asha, "seconds": seconds, "trial_epochs": found.trial_epochs, "best_val_wga": found.best_val_wga,
            "trials": found.trials, "stage1_seconds": stage1, "trial_seconds": seconds / found.trials}


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

    # The paper preset, per (dataset, r) and FFR mixture. Trials run at the first seed only; the
    # selected configuration then runs at every seed (seed 0's is the best trial, reused). DFR
    # searches its base (ERM) with the same space and TPE seed: its trials are ERM's, reused.
    paper = PRESETS["paper"]["sweep"]
    searched = [m for m in paper["methods"] if m != "dfr"]
    seeds, trials = len(paper["seeds"]), paper["search"]["num_samples"]
    stage2_runs = len(searched) * trials + len(searched) * (seeds - 1)
    stage1, trial = rows[0]["stage1_seconds"], rows[1]["trial_seconds"]
    shared = seeds * stage1 + stage2_runs * trial
    repeated = stage2_runs * (stage1 + trial)
    print(f"\nFFR stage 1 here: {stage1:.0f} s (generation of its tables included); an average FIFO trial: {trial:.0f} s.")
    print(f"Paper preset, per (dataset, r) and FFR mixture: {stage2_runs} stage-2 runs ({len(searched)} searched methods × "
          f"{trials} trials at seed 0 + {seeds - 1} more seeds each) and {seeds} stage-1 runs when shared.")
    print(f"Stage 1 shared: {shared / 3600:.2f} h; trained again for every stage-2 run: {repeated / 3600:.2f} h "
          f"→ sharing saves {1 - shared / repeated:.0%} at these per-stage costs.")


if __name__ == "__main__":
    main()
