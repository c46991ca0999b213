"""The generation job: plan → Ray Data ``map_batches`` over generator actors → image table."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from PIL import Image

from fake2real.data.table import SCHEMA, SYNTHETIC, TableInfo, count_groups, finalize, is_complete, read_info, staging_dir


def encode(pixels: np.ndarray, image_format: str, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    if image_format == "png":
        Image.fromarray(pixels).save(buffer, format="PNG")
    else:
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class GeneratorActor:
    """Loads its backend once; turns a batch of plan rows into contract rows."""

    def __init__(self, backend: str, backend_kwargs: dict, image_format: str):
        from fake2real.generate.backends import make_backend

        self.backend = make_backend(backend, backend_kwargs)
        self.image_format = image_format

    def __call__(self, batch: pa.Table) -> pa.Table:
        y = batch.column("y").to_numpy()
        b = batch.column("b").to_numpy()
        seeds = batch.column("seed").to_numpy()
        prompts = batch.column("prompt").to_pylist()
        images = self.backend.generate(y, b, prompts, seeds)
        n = batch.num_rows
        columns = {
            "id": batch.column("id"),
            "image": pa.array([encode(img, self.image_format) for img in images], pa.binary()),
            "y": batch.column("y"),
            "b": batch.column("b"),
            "g": pa.array([SYNTHETIC] * n, pa.int64()),
            "split": batch.column("split"),
            "prompt": batch.column("prompt"),
            "seed": batch.column("seed"),
            "generator": pa.array([self.backend.generator] * n, pa.string()),
            "steps": pa.array([self.backend.steps] * n, pa.int64()),
            "guidance": pa.array([self.backend.guidance] * n, pa.float64()),
        }
        return pa.table(columns, schema=SCHEMA)


def run_generation(
    plan: pa.Table,
    output: str | Path,
    info: TableInfo,
    backend: str,
    backend_kwargs: dict,
    *,
    image_format: str = "png",
    batch_size: int = 64,
    num_actors: int = 1,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
) -> TableInfo:
    """Generate every plan row into the table at ``output``; a finished table is reused as is."""
    output = Path(output)
    if is_complete(output):
        return read_info(output)
    staging = staging_dir(output)
    # Enough blocks that every actor has work and progress shows per batch.
    num_blocks = max(num_actors * 4, -(-plan.num_rows // batch_size))
    dataset = ray.data.from_arrow(plan).repartition(num_blocks)
    dataset = dataset.map_batches(
        GeneratorActor,
        fn_constructor_kwargs={"backend": backend, "backend_kwargs": backend_kwargs, "image_format": image_format},
        batch_size=batch_size,
        batch_format="pyarrow",
        num_cpus=cpus_per_actor,
        num_gpus=gpus_per_actor,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=num_actors),
    )
    try:
        dataset.write_parquet(str(staging))
        written = pa.concat_tables(
            [pq.read_table(p, columns=["id", "y", "b", "split"]) for p in sorted(staging.glob("*.parquet"))]
        )
        if written.num_rows != plan.num_rows:
            raise RuntimeError(f"generation wrote {written.num_rows} rows for a plan of {plan.num_rows}")
        info.num_rows = written.num_rows
        info.group_counts = count_groups(written)
        finalize(staging, output, info)
        return info
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

