"""Experiments of a sweep one at a time against several at once, side by side on one machine.

    python benchmarks/sweep_at_once.py                  # 1 at a time, then 2 at once
    python benchmarks/sweep_at_once.py --at-once 1 4    # e.g. on a machine with 4+ cores

The same small sweep (the smoke preset without search: none / asb / ffr × erm, one seed, over two
artifact strengths, 1 worker per stage) runs in a fresh output folder and MLflow store per
setting of ``sweep.max_concurrent_experiments``, each in its own local Ray, one after the other.
Prints a Markdown block for benchmarks/RESULTS.md: wall seconds and machine CPU-seconds per sweep.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["--preset", "smoke", "sweep.search.num_samples=0", "sweep.mixtures=[none,asb,ffr]", "sweep.methods=[erm]",
         "sweep.axes={dataset.shapes.artifact_strength: [0.0, 0.3]}", "train.num_workers=1"]


def _machine_cpu_s() -> float:
    with open("/proc/stat") as stat:
        user, nice, system = (int(v) for v in stat.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def _run(at_once: int, root: Path) -> tuple[float, float]:
    folder = root / f"at-once-{at_once}"
    command = [sys.executable, str(REPO / "jobs" / "sweep.py"), *SWEEP, f"sweep.max_concurrent_experiments={at_once}",
               f"output_dir={folder / 'outputs'}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}"]
    folder.mkdir(parents=True)
    wall, cpu = time.perf_counter(), _machine_cpu_s()
    with open(folder / "sweep.log", "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    wall, cpu = time.perf_counter() - wall, _machine_cpu_s() - cpu
    if done.returncode:
        sys.exit(f"sweep with {at_once} at once failed (exit {done.returncode}): see {folder / 'sweep.log'}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at-once", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fake2real-at-once-"))
    measured = {n: _run(n, root) for n in args.at_once}
    print(f"\n6 experiments (7 stages to train after sharing), {os.cpu_count()} cores; logs under {root}\n")
    print("| experiments at once | wall seconds | machine CPU-seconds |\n|---|---|---|")
    for n, (wall, cpu) in measured.items():
        print(f"| {n} | {wall:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
