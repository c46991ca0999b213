"""Train the (class, bias)-conditional diffusion generator of a config once, and judge it.

    python jobs/train_generator.py --config configs/fashion/r0.99.yaml
    ray job submit --working-dir . -- python jobs/train_generator.py --config configs/fashion/r0.99.yaml

Trains on the dataset's held-apart images (never the benchmark's), resumes from its latest
checkpoint when run again, and prints where the trained generator is and how well a real-trained
reader recognises its images' class and bias per group. Sweeps train it themselves when needed.
"""

from fake2real import cli
from fake2real.entrypoints import train_generator_job


def main() -> None:
    print(train_generator_job(cli.load(cli.parse(__doc__))))


if __name__ == "__main__":
    cli.main(main)
