"""Train one experiment (a mixture × method × seed) and print its test metrics.

    python jobs/train.py --config configs/shapes.yaml train.mixture=ffr train.method=groupdro
    ray job submit --working-dir . -- python jobs/train.py train.mixture=none

Running the same command again resumes an interrupted stage from its last checkpoint and
reuses finished ones.
"""

from fake2real import cli
from fake2real.entrypoints import train_job


def main() -> None:
    print(train_job(cli.load(cli.parse(__doc__))))


if __name__ == "__main__":
    cli.main(main)
