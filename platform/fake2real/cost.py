"""Per-image rates for the dry run's cost estimate: the config's (``sweep.cost``), else measured ones.

``MEASURED`` holds only rates measured by a command in ``benchmarks/`` (``benchmarks/rates.py``,
figures and device in ``benchmarks/RESULTS.md``). A generator or model without one has no rate:
the dry run says so instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

# (what, generator backend or model, device) -> images per second per device (one CPU worker or
# one GPU). Each with the command and section of benchmarks/RESULTS.md that measured it.
MEASURED: dict[tuple[str, str, str], float] = {
    # benchmarks/training.py, 2026-11-23, 2-core CPU: in-memory images/s per worker.
    ("training", "small_cnn", "cpu"): 851.5,  # 32²
    ("training", "resnet50", "cpu"): 3.0,  # 224²
    # benchmarks/pools.py, 2026-11-29, 2-core CPU: 3,200 32² images at once, Ray start-up included.
    ("generation", "procedural", "cpu"): 767.0,
}


@dataclass(frozen=True)
class Rates:
    generation: float | None
    generation_source: str
    training: float | None
    training_source: str


def _rate(given: float | None, key: tuple[str, str, str], setting: str) -> tuple[float | None, str]:
    if given is not None:
        return given, f"sweep.cost.{setting}"
    if key in MEASURED:
        return MEASURED[key], f"measured: {key[1]} on {key[2]}, benchmarks/RESULTS.md"
    return None, f"no measured rate for {key[1]} on {key[2]}"


def rates(config) -> Rates:
    cost, gen, train = config.sweep.cost, config.generation, config.train
    generation_device = "gpu" if gen.backend == "diffusers" and gen.device != "cpu" else "cpu"
    generation = _rate(cost.generation_images_per_second, ("generation", gen.backend, generation_device), "generation_images_per_second")
    training = _rate(cost.training_images_per_second, ("training", train.model, "gpu" if train.use_gpu else "cpu"), "training_images_per_second")
    return Rates(*generation, *training)
