"""Generate (or grow) the synthetic pool that a config's mixture draws from (Ray Data → Parquet).

    python jobs/generate.py --config configs/shapes.yaml
    python jobs/generate.py --dry-run generation.images_per_group=500
    python jobs/generate.py generation.backend=diffusers generation.diffusers.model=/models/sd-v1-4 \
        generation.prompts=celeba generation.images_per_group=1000 generation.output=/data/celeba-sd
    ray job submit --working-dir . -- python jobs/generate.py --config configs/shapes.yaml
"""

from fake2real import cli
from fake2real.entrypoints import generate_dry_run, generate_job


def main() -> None:
    args = cli.parse(__doc__, extra=lambda p: p.add_argument("--dry-run", action="store_true", help="print the plan only"))
    config = cli.load(args)
    print(generate_dry_run(config) if args.dry_run else generate_job(config))


if __name__ == "__main__":
    cli.main(main)
