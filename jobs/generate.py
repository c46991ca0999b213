"""Generate (or grow) the synthetic pool that a config's mixture draws from (Ray Data → Parquet).

    python jobs/generate.py --config configs/shapes.yaml
    python jobs/generate.py --dry-run generation.images_per_group=500
    python jobs/generate.py generation.backend=diffusers generation.model=/models/sd-v1-4 \
        generation.prompts=celeba generation.images_per_group=1000 generation.output=/data/celeba-sd
    ray job submit --working-dir . -- python jobs/generate.py --config configs/shapes.yaml
"""

from fake2real import cli
from fake2real.pools import run_generation_job


def main() -> None:
    args = cli.parse(__doc__, extra=lambda p: p.add_argument("--dry-run", action="store_true", help="print the plan only"))
    print(run_generation_job(cli.load(args), dry_run=args.dry_run))


if __name__ == "__main__":
    cli.main(main)
