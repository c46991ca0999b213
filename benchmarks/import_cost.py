"""What reading a config costs in imports: a config parse, and the sweep's dry run.

    python benchmarks/import_cost.py            # 5 fresh interpreters per command, median

Each command runs in a fresh interpreter with ``python -X importtime``; reported: the modules it
imported, whether torch / Ray / Ray Train were among them, the summed import time of its top-level
imports (``-X importtime``'s cumulative column) and the process's wall time. A config should load
without torch or Ray (issue 30): a laptop user checking a cluster config waits for neither.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "ray", "ray.train", "ray.tune", "ray.data", "mlflow")
COMMANDS = {
    "config parse (`build_config()`)": ["-c", "from fake2real.config import build_config; build_config()"],
    "`jobs/sweep.py --dry-run`": [str(ROOT / "jobs" / "sweep.py"), "--dry-run"],
}


def measure(args: list[str], output_dir: str) -> tuple[float, float, set[str]]:
    """Import seconds (top-level cumulative), wall seconds, and the modules imported."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", *args, *([f"output_dir={output_dir}"] if args[0] != "-c" else [])],
                          capture_output=True, text=True, cwd=output_dir)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip().splitlines()[-1]}")
    modules, import_us = set(), 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line or "imported package" in line:
            continue
        _, cumulative, name = line.split("|")
        modules.add(name.strip())
        if not name[1:].startswith(" "):  # a top-level import: its cumulative time holds its children's
            import_us += int(cumulative)
    return import_us / 1e6, wall, modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| command | modules | heavy packages imported | import s (median) | wall s (median) |")
    print("|---|---|---|---|---|")
    for label, command in COMMANDS.items():
        runs = []
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.repeats):
                runs.append(measure(command, folder))
        heavy = [name for name in HEAVY if name in runs[0][2]]
        print(f"| {label} | {len(runs[0][2])} | {', '.join(heavy) or 'none'} | "
              f"{statistics.median(r[0] for r in runs):.2f} | {statistics.median(r[1] for r in runs):.2f} |")


if __name__ == "__main__":
    main()
