"""Run a sweep (mixtures × methods × seeds) and print its results table.

    ray job submit --working-dir . -- python jobs/sweep.py --preset quick
    python jobs/sweep.py --preset quick                 # local Ray, MLflow in ./mlflow.db
    python jobs/sweep.py --config configs/shapes.yaml sweep.seeds=[0,1,2]
"""

from fake2real import cli
from fake2real.sweep import run_sweep, where_to_look


def main() -> None:
    config = cli.load(cli.parse(__doc__))
    result = run_sweep(config)
    print("\n" + result.table)
    print(where_to_look(result))


if __name__ == "__main__":
    cli.main(main)
