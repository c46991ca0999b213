"""What synthetic pools save, and that a grown pool equals one made at once.

    python benchmarks/pools.py                 # both parts (the second starts a local Ray)
    python benchmarks/pools.py --no-growth     # the count comparison only (seconds, no Ray)

1. Counts (no Ray): the ``paper`` preset's sweep on ``configs/celebahq/r0.99.yaml`` (every bias
   ratio, mixture and ablation) with CelebA-HQ's real train group counts at each ratio (the
   reference's split, as pinned in tests/unit/data/test_groups.py). Before pools, every distinct
   (way of making images, counts) was its own table: the sum over distinct draws. With pools, one
   pool per way of making images, sized to its largest draw. Both beside the single largest
   cell's need and the reference's 10,000 images per group.
2. Growth (local Ray, procedural backend): a pool of 500 images per group grown to 800, and a
   pool of 800 made at once: same ids, same bytes; generation rate of each run.

Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fake2real.config import build_config
from fake2real.data.storage import Location
from fake2real.data.table import TableInfo
from fake2real.presets import preset
from fake2real.run.sweep_plan import draws, pool_needs
from fake2real.prepare.workspace import Workspace

REPO = Path(__file__).resolve().parent.parent
# CelebA-HQ train (class Smiling, bias Male): the majority groups and the kept minority per ratio.
MAJORITY = {"y0_b1": 5335, "y1_b0": 7797}
KEPT = {0.9: (592, 866), 0.95: (281, 411), 0.97: (166, 242), 0.99: (54, 79), 0.999: (6, 8)}
REFERENCE_PER_GROUP = 10_000


def celebahq_counts(cell) -> TableInfo:
    y0_b0, y1_b1 = KEPT[cell.dataset.bias_ratio]
    train = {"y0_b0": y0_b0, "y0_b1": MAJORITY["y0_b1"], "y1_b0": MAJORITY["y1_b0"], "y1_b1": y1_b1}
    return TableInfo("celebahq", ["not_smiling", "smiling"], ["female", "male"], "real", group_counts={"train": train})


def counts(ablations: bool) -> dict:
    overrides = ["generation.diffusers.model=/nonexistent/sd"] + ([] if ablations else ["sweep.ablation_mixtures=[]"])
    config = build_config(REPO / "configs/celebahq/r0.99.yaml", overrides, base=preset("paper"))
    workspace = Workspace(Location(tempfile.mkdtemp(prefix="f2r-pools-")))
    found = [d for d in draws(config, workspace, celebahq_counts) if d.pool.split == "train"]
    distinct = {d.id: sum(d.counts.values()) for d in found}
    needs = [n for n in pool_needs(config, workspace, celebahq_counts) if n.pool.split == "train"]
    largest_cell = max(distinct.values())
    largest_per_pool = {n.pool.id: max(sum(d.counts.values()) for d in found if d.pool.id == n.pool.id) for n in needs}
    return {
        "before": sum(distinct.values()),
        "after": sum(sum(n.needed.values()) for n in needs),
        "pools": len(needs),
        "tables_before": len(distinct),
        "largest_cell": largest_cell,
        "pool_vs_its_largest_cell": {pid[:8]: round(sum(n.needed.values()) / largest_per_pool[n.pool.id], 2) for pid, n in ((n.pool.id, n) for n in needs)},
        "reference": REFERENCE_PER_GROUP * 4 * len(needs),
    }


def growth(root: Path) -> dict:
    from fake2real.data.table import read_table
    from fake2real.runtime import init_ray
    from fake2real.entrypoints import generate_job

    init_ray()

    def generate(output: Path, per_group: int) -> float:
        config = build_config(overrides={"output_dir": str(root / "out"), "generation": {"output": str(output), "images_per_group": per_group}})
        started = time.perf_counter()
        generate_job(config)
        return time.perf_counter() - started

    first = generate(root / "grown", 500)
    second = generate(root / "grown", 800)
    at_once = generate(root / "at-once", 800)
    grown, whole = read_table(root / "grown"), read_table(root / "at-once")
    return {"grown_rows": grown.num_rows, "equal": grown.equals(whole), "step1_s": first, "step2_s": second, "at_once_s": at_once}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-growth", action="store_true", help="skip part 2 (no Ray)")
    args = parser.parse_args()
    print("| sweep | tables before | images before | pools | images with pools | fewer | largest cell | pool ÷ its largest cell "
          "| reference (10,000 per group per pool) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, ablations in (("paper preset, all mixtures and ablations", True), ("paper preset, main grid only", False)):
        c = counts(ablations)
        ratios = ", ".join(f"{r}" for r in c["pool_vs_its_largest_cell"].values())
        print(f"| {label} | {c['tables_before']} | {c['before']:,} | {c['pools']} | {c['after']:,} | {c['before'] / c['after']:.1f}× | "
              f"{c['largest_cell']:,} | {ratios} | {c['reference']:,} |")
    if args.no_growth:
        return
    with tempfile.TemporaryDirectory(prefix="f2r-pools-") as tmp:
        g = growth(Path(tmp))
    print(f"\nGrowth (procedural, 32² PNG): 500 → 800 per group in two runs: {g['step1_s']:.1f} s + {g['step2_s']:.1f} s; "
          f"800 at once: {g['at_once_s']:.1f} s ({3200 / g['at_once_s']:.0f} images/s with Ray start-up); "
          f"{g['grown_rows']} rows, grown == at once (ids, seeds, bytes): {g['equal']}")


if __name__ == "__main__":
    main()
