"""Ingest a real dataset from its native layout into a Parquet image table (Ray Data).

    python jobs/ingest.py --config configs/celeba/r0.99.yaml dataset.root=/data/celeba
    ray job submit --runtime-env cluster/runtime_env.yaml -- \
        python jobs/ingest.py --config configs/waterbirds/r0.95.yaml dataset.root=s3://my-bucket/waterbirds

Prints the group counts per split after the bias-ratio rule.
"""

from fake2real import cli
from fake2real.entrypoints import ingest_job


def main() -> None:
    print(ingest_job(cli.load(cli.parse(__doc__))))


if __name__ == "__main__":
    cli.main(main)
