"""Walk one experiment through the platform and count the rooms it enters and the climbs it makes.

    PYTHONPATH=platform python benchmarks/layer_walk.py --json walk.json
    # an older commit, apart from the working tree:
    git worktree add ../walk-before <commit> && PYTHONPATH=../walk-before/platform python benchmarks/layer_walk.py

The walk is what ``jobs/train.py --preset quick`` does, in this process: the config (the quick
preset; FFR, ERM, no search, ``--epochs`` per stage, output and sqlite MLflow store in a temporary
folder) and ``entrypoints.train_job`` on it, Ray started locally and stopped at the end. Meanwhile
``sys.setprofile`` / ``threading.setprofile`` see every Python function call (a generator's each
resumption counts as a call too).

- A **room** is a ``fake2real`` module (``frame.f_globals['__name__']``, e.g.
  ``fake2real.prepare.synthetic``) in which code ran during the walk.
- A **climb** is a distinct caller module → callee module edge, both frames in ``fake2real``
  (the callee's frame and the frame right above it), where the callee's layer is higher than the
  caller's: a call back up the house (a callback, a passed object, a validator). Layers are the
  numbers of the ```layers block of ``docs/design.md`` (as tests/unit/test_layers.py reads it; the
  longest listed prefix decides), read from the measured tree: ``<package>/../../docs/design.md``.

Only the driver process is traced: what runs in Ray's worker processes (the stages' training,
Ray Data's tasks) is not seen. Prints a Markdown summary on stdout (the job's own lines go to
stderr); ``--json`` writes the full result. A known problem: one line on stderr and exit status 2;
a failed walk: exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path


class WalkError(Exception):
    """A known problem: one line, exit status 2."""


def layer_table(design: Path) -> dict[str, int]:
    """Module prefix (without ``fake2real.``) → layer number, from the ```layers block."""
    if not design.is_file():
        raise WalkError(f"{design}: no such file")
    block = re.search(r"```layers\n(.*?)```", design.read_text(), re.S)
    if not block:
        raise WalkError(f"{design} has no ```layers block")
    table = {}
    for line in block.group(1).splitlines():
        number, _name, *modules = line.split()
        table.update({module: int(number) for module in modules})
    return table


def layer_of(module: str, table: dict[str, int]) -> int | None:
    """The layer of the longest listed prefix of ``module`` (``fake2real.train.methods.erm`` → ``train``'s)."""
    parts = module.removeprefix("fake2real").lstrip(".").split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in table:
            return table[".".join(parts[:end])]
    return None


class CallRecorder:
    """A profile function: the fake2real modules that ran code, and module → module call counts."""

    def __init__(self) -> None:
        self.rooms: set[str] = set()
        self.edges: Counter[tuple[str, str]] = Counter()

    def __call__(self, frame, event, _arg) -> None:
        if event != "call":
            return
        callee = frame.f_globals.get("__name__") or ""
        if callee.partition(".")[0] != "fake2real":
            return
        self.rooms.add(callee)
        back = frame.f_back
        caller = (back.f_globals.get("__name__") or "") if back is not None else ""
        if caller != callee and caller.partition(".")[0] == "fake2real":
            self.edges[caller, callee] += 1


def walk(epochs: int, folder: Path) -> tuple[CallRecorder, str]:
    """One experiment, FFR / ERM on the quick preset, traced; returns the recorder and the job's summary."""
    from fake2real.config import build_config
    from fake2real.entrypoints import train_job
    from fake2real.presets import preset
    from fake2real.runtime import stop_ray

    overrides = [f"output_dir={folder / 'out'}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
                 "train.mixture=ffr", "train.method=erm", "sweep.search.num_samples=0",
                 f"train.real.epochs={epochs}", f"train.synthetic.epochs={epochs}"]
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # as cli.main sets it
    recorder = CallRecorder()
    threading.setprofile(recorder)
    sys.setprofile(recorder)
    try:  # the job's progress lines go to stderr: stdout is this script's summary
        with contextlib.redirect_stdout(sys.stderr):
            summary = train_job(build_config(None, overrides, base=preset("quick")))
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        stop_ray()
    return recorder, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (output, MLflow store)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per stage (default 1)")
    args = parser.parse_args()

    import fake2real

    tree = Path(fake2real.__file__).resolve().parents[2]
    table = layer_table(tree / "docs" / "design.md")
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix="layer-walk-"))
    started = time.perf_counter()
    try:
        recorder, summary = walk(args.epochs, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    wall_s = time.perf_counter() - started

    layers = {room: layer_of(room, table) for room in recorder.rooms | {m for edge in recorder.edges for m in edge}}
    climbs = sorted(((caller, callee, n) for (caller, callee), n in recorder.edges.items()
                     if None not in (layers[caller], layers[callee]) and layers[callee] > layers[caller]),
                    key=lambda c: (-c[2], c[0], c[1]))
    result = {
        "tree": str(tree), "commit": commit, "wall_s": round(wall_s, 1), "epochs": args.epochs,
        "folder": str(folder) if args.keep else None, "summary": summary,
        "rooms": len(recorder.rooms), "climbs": len(climbs),
        "climbing_edges": [{"caller": a, "caller_layer": layers[a], "callee": b, "callee_layer": layers[b], "calls": n}
                           for a, b, n in climbs],
        "unlayered": sorted(m for m, layer in layers.items() if layer is None),
        "room_layers": {room: layers[room] for room in sorted(recorder.rooms)},
        "edges": [{"caller": a, "callee": b, "calls": n} for (a, b), n in sorted(recorder.edges.items())],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")

    print(f"## Layer walk — {tree} ({commit or 'no git'}), one FFR/ERM experiment, {args.epochs} epoch(s) per stage\n")
    print(f"- rooms (fake2real modules that ran code, driver only): **{len(recorder.rooms)}**")
    print(f"- climbs (distinct caller → callee edges to a higher layer): **{len(climbs)}**")
    print(f"- distinct fake2real → fake2real edges: {len(recorder.edges)}; wall time {wall_s:.1f} s")
    if result["unlayered"]:
        print(f"- modules in no layer (left out of climbs): {', '.join(result['unlayered'])}")
    if climbs:  # the top 15; all of them in --json
        print("\n| caller (layer) | callee (layer) | calls |\n|---|---|---|")
        print("\n".join(f"| {a} ({layers[a]}) | {b} ({layers[b]}) | {n} |" for a, b, n in climbs[:15]))


if __name__ == "__main__":
    try:
        main()
    except WalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # the walk failed: one line, exit status 1
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {line[:300]}", file=sys.stderr)
        sys.exit(1)
