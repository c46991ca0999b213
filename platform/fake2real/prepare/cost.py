"""Per-image rates for the dry run's cost estimate: the config's (``sweep.cost``), else measured ones.

``MEASURED`` holds only rates measured by a command in ``benchmarks/`` (``benchmarks/rates.py``,
figures and device in ``benchmarks/RESULTS.md``). A generator or model without one has no rate:
the dry run says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from fake2real.data.datasets import dataset_of
from fake2real.generate.backends import backend_of, settings_of

# (what, generator backend or model, device, image size) -> images per second per device (one CPU worker or
# one GPU). Each with the command and section of benchmarks/RESULTS.md that measured it.
MEASURED: dict[tuple[str, str, str, int], float] = {
    # benchmarks/training.py, 2026-11-23, 2-core CPU: in-memory images/s per worker.
    ("training", "small_cnn", "cpu", 32): 851.5,
    ("training", "resnet50", "cpu", 224): 3.0,
    # benchmarks/training.py --models efficientnet_lite0:64, 2026-12-06, 2-core CPU, 2 CPUs per worker, NHWC.
    ("training", "efficientnet_lite0", "cpu", 64): 240.8,
    # benchmarks/pools.py, 2026-11-29, 2-core CPU: 3,200 images at once, Ray start-up included.
    ("generation", "procedural", "cpu", 32): 767.0,
    # benchmarks/fashion_generator.py, 2026-12-06, 2-core CPU: the Ray Data job, 1 actor × 2 CPUs, DDIM 25 steps, 1,600 images.
    ("generation", "group_diffusion", "cpu", 32): 24.9,
}


# (device, the generator UNet's channels) -> images/s of a trained generator's training (generation.group_diffusion):
# benchmarks/fashion_generator.py, "Fashion-MNIST generator".
MEASURED_GENERATOR_TRAINING: dict[tuple[str, tuple[int, ...]], float] = {
    # 2026-12-06, 2-core CPU: 3,000 steps × 128 images in 1,302.1 s, 1 worker × 2 CPUs.
    ("cpu", (16, 32, 64)): 294.9,
}


# (device, workers per stage) -> seconds a stage costs besides its epochs (the table decoded, the
# start and final evaluations, and for several workers Ray Train starting its controller, helpers
# and workers): benchmarks/stage_overhead.py, 2-core CPU, "fixed cost of our stage". One worker:
# 2026-12-06, a Ray task in a warm worker process (train/local.py; 9.6 s on a TorchTrainer).
MEASURED_STAGE_START_S: dict[tuple[str, int], float] = {("cpu", 1): 0.7, ("cpu", 2): 12.7}


def stage_start_s(config) -> float | None:
    """The measured fixed cost of one of ``config``'s stages, None when not measured for its shape."""
    return MEASURED_STAGE_START_S.get(("gpu" if config.train.use_gpu else "cpu", config.train.num_workers))


@dataclass(frozen=True)
class Rates:
    generation: float | None
    generation_source: str
    training: float | None
    training_source: str


def _rate(given: float | None, key: tuple[str, str, str, int], setting: str) -> tuple[float | None, str]:
    if given is not None:
        return given, f"sweep.cost.{setting}"
    what = f"{key[1]} at {key[3]}² on {key[2]}"
    if key in MEASURED:
        return MEASURED[key], f"measured: {what}, benchmarks/RESULTS.md"
    return None, f"no measured rate for {what}"


def rates(config) -> Rates:
    cost, gen, train, dataset = config.sweep.cost, config.generation, config.train, config.dataset
    real_size = dataset_of(dataset).stored_image_size(dataset)
    generation_key = ("generation", gen.backend, *backend_of(config).rate_key(settings_of(config), real_size, gen.gpus_per_actor))
    # A model that resizes its input (train.input_size) costs what that size costs.
    training_key = ("training", train.model, "gpu" if train.use_gpu else "cpu", train.input_size or real_size)
    return Rates(*_rate(cost.generation_images_per_second, generation_key, "generation_images_per_second"),
                 *_rate(cost.training_images_per_second, training_key, "training_images_per_second"))
