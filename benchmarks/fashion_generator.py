"""The Fashion-MNIST benchmark's generator: how fast it trains and how fast it generates.

    python benchmarks/fashion_generator.py --config configs/fashion/r0.99.yaml --output outputs
    python benchmarks/fashion_generator.py --config configs/fashion/r0.99.yaml --output /tmp/ci --ci-size

Measures, on this machine:
  (i)   training: the wall time of the generator's job (held-apart table, Ray Train fit, quality
        check) in a fresh --output; a generator found there already is timed from its MLflow run;
  (ii)  generation: images/s of the trained generator through the Ray Data job (one actor with
        generation.cpus_per_actor CPUs), DDIM at 25 and 50 steps, 1,600 images each, into a
        throwaway pool; and of the backend alone, in this process, without Ray;
  (iii) ``--ci-size``: the integration test's generator (10 steps, 2 UNet levels): seconds.
Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

CI_SIZE = {"generation": {"group_diffusion": {"training": {"steps": 10, "checkpoint_every": 5, "batch_size": 16, "channels": [8, 16],
                                                           "quality_images_per_group": 4, "quality_reader_epochs": 1}}}}


def _training(config) -> tuple[float, dict, bool]:
    """(seconds, the generator's done marker, whether it was trained now)."""
    from mlflow.tracking import MlflowClient

    from fake2real.generate.generator_training import finished_generator
    from fake2real.prepare.generators import ensure_generator, generator_job
    from fake2real.track.mlflow_runs import resolve_uri
    from fake2real.track.names import KEY_TAG
    from fake2real.prepare.workspace import Workspace

    workspace = Workspace.create(config)
    job = generator_job(config)
    if finished_generator(job.spec, workspace.runs) is None:
        started = time.perf_counter()
        result = ensure_generator(config, workspace)
        return time.perf_counter() - started, result, True
    client = MlflowClient(resolve_uri(config.tracking.uri))
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    run = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{job.spec.key()}'")[0]
    return (run.info.end_time - run.info.start_time) / 1000, ensure_generator(config, workspace), False


def _ray_rate(config, pipeline_uri: str, steps: int, images: int) -> float:
    """images/s of the generation job (Ray Data actors) into a throwaway pool, actor start-up included."""
    from dataclasses import replace

    from fake2real.data.table import TableInfo
    from fake2real.generate.job import run_generation
    from fake2real.generate.spec import ActorPool, ImageSpec
    from fake2real.generate.backends import backend_of
    from fake2real.generate.plan import build_plan

    gen = config.generation
    settings = {**backend_of(config).identity(config), "steps": steps}
    spec = ImageSpec("group_diffusion", settings, "png", inputs={"model_uri": pipeline_uri})
    per_group = images // 4
    counts = {(y, b): per_group for y in range(2) for b in range(2)}
    _, plan = build_plan(counts, lambda y, b, seed: f"y{y}_b{b}", {"benchmark": steps, "at": time.time()})
    actors = ActorPool(gen.batch_size, 1, 1, gen.cpus_per_actor, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        run_generation(plan, Path(folder) / "pool", TableInfo("fashion_mnist", ["pullover", "coat"], ["warm", "cool"], "synthetic"),
                       replace(spec), actors)
        return plan.num_rows / (time.perf_counter() - started)


def _backend_rate(pipeline_uri: str, settings: dict, steps: int, images: int, batch: int) -> float:
    """images/s of the backend alone in this process (no Ray), after one warm-up batch."""
    import numpy as np
    import torch

    from fake2real.generate.backends import make_generator

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    backend = make_generator("group_diffusion", {**settings, "steps": steps, "model_uri": pipeline_uri})
    y, b = np.repeat([0, 0, 1, 1], batch // 4), np.tile([0, 1], batch // 2)
    backend.generate(y, b, [""] * batch, np.arange(batch))
    started, made = time.perf_counter(), 0
    while made < images:
        backend.generate(y, b, [""] * batch, np.arange(made, made + batch))
        made += batch
    return made / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "fashion" / "r0.99.yaml"))
    parser.add_argument("--output", required=True, help="output_dir: where the generator is trained (or found)")
    parser.add_argument("--ci-size", action="store_true", help="the integration test's tiny generator")
    parser.add_argument("--images", type=int, default=1600)
    args = parser.parse_args()

    from fake2real.config import build_config
    from fake2real.generate.backends import backend_of
    from fake2real.runtime import init_ray

    overrides = {"output_dir": args.output, **(CI_SIZE if args.ci_size else {})}
    config = build_config(args.config, overrides=overrides)
    init_ray()
    seconds, result, trained_now = _training(config)
    training = config.generation.group_diffusion.training
    lines = [f"### {time.strftime('%Y-%m-%d')} — {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
             f"`{Path(args.config).relative_to(REPO) if Path(args.config).is_absolute() else args.config}`{' --ci-size' if args.ci_size else ''}",
             "", "| what | value |", "|---|---|",
             f"| generator training ({training.steps} steps × {training.batch_size} images, UNet {training.channels}) | "
             f"{seconds:.1f} s ({'trained now' if trained_now else 'its MLflow run, start to end'}) |",
             f"| final training loss | {result['metrics'].get('train/loss', float('nan')):.4f} |"]
    quality = result["quality"]
    lines += [f"| {name} | {quality[name]:.3f} |" for name in sorted(quality) if "/group/" not in name]
    if not args.ci_size:
        settings = backend_of(config).identity(config)
        for steps in (25, 50):
            rate = _ray_rate(config, result["pipeline_uri"], steps, args.images)
            alone = _backend_rate(result["pipeline_uri"], settings, steps, args.images, config.generation.batch_size)
            lines.append(f"| generation, DDIM {steps} steps, Ray Data job (1 actor × {config.generation.cpus_per_actor:g} CPU, "
                         f"{args.images} images, start-up included) | {rate:.1f} images/s |")
            lines.append(f"| generation, DDIM {steps} steps, the backend alone in one process (batch {config.generation.batch_size}) | "
                         f"{alone:.1f} images/s |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
