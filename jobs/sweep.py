"""Run a sweep (mixtures × methods × seeds) and print its results table.

    ray job submit --working-dir . -- python jobs/sweep.py --preset quick
    python jobs/sweep.py --preset quick                 # local Ray, MLflow in ./mlflow.db
    python jobs/sweep.py --config configs/shapes.yaml sweep.seeds=[0,1,2]
    python jobs/sweep.py --dry-run --preset paper --config configs/celebahq/r0.99.yaml   # plan and cost, no Ray
"""

from fake2real import cli
from fake2real.entrypoints import sweep_dry_run, sweep_job


def main() -> None:
    args = cli.parse(__doc__, extra=lambda p: p.add_argument("--dry-run", action="store_true", help="print the plan and its cost only"))
    config = cli.load(args)
    print(sweep_dry_run(config) if args.dry_run else sweep_job(config))


if __name__ == "__main__":
    cli.main(main)
