"""Ingest throughput, and what decoding stored JPEGs costs a training data path at 224².

    python benchmarks/ingest.py                    # 2,000 CelebA-sized JPEGs (178×218), 1 and 2 cores

Measures (i) the ingest job (read → decode → resize to 224² → JPEG → Parquet) in images/s with
Ray limited to 1 and to all cores; (ii) the training side on one core: batches from in-memory
uint8 tensors vs decoding the table's JPEGs (torchvision ``decode_jpeg``), and the cores per GPU
that decoding needs to feed ~2,500 images/s. Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def write_celeba(root: Path, n: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    base = rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)
    attrs, parts = [], []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        # Smooth-ish content so JPEG sizes resemble photos rather than white noise.
        pixels = np.roll(base, i, axis=1) // 2 + rng.integers(0, 64, (218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img_align_celeba" / name, quality=90)
        y, b = i % 2, (i // 2) % 2
        attrs.append(f"{name} {1 if b else -1} {1 if y else -1}")
        k = (i // 4) % 10  # every group in every split
        parts.append(f"{name} {0 if k < 8 else 1 if k == 8 else 2}")
    (root / "list_attr_celeba.txt").write_text(f"{n}\nMale Smiling\n" + "\n".join(attrs) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(parts) + "\n")


def ingest_seconds(root: Path, cores: int) -> tuple[float, Path]:
    out = Path(tempfile.mkdtemp(prefix="f2r-ingest-"))
    code = (
        "import ray, time; ray.init(num_cpus=%d, log_to_driver=False)\n"
        "from fake2real.config import build_config\n"
        "from fake2real.entrypoints import ingest_job\n"
        "c = build_config(overrides={'output_dir': %r, 'dataset': {'name': 'celeba', 'root': %r, 'bias_ratio': None}})\n"
        "t = time.perf_counter(); ingest_job(c); print('SECONDS', time.perf_counter() - t)\n"
    ) % (cores, str(out), str(root))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.split("SECONDS")[-1]), next(out.glob("data/real-celeba-*"))


def loader_rates(table_dir: Path, batch: int = 128) -> tuple[float, float]:
    import torch
    from torchvision.io import decode_jpeg

    from fake2real.data.table import read_table

    torch.set_num_threads(1)
    table = read_table(table_dir, columns=["id", "image"])
    blobs = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in table["image"].to_pylist()]
    start = time.perf_counter()
    decoded = [decode_jpeg(blob) for blob in blobs]
    decode_rate = len(blobs) / (time.perf_counter() - start)
    tensors = torch.stack(decoded)
    start, seen = time.perf_counter(), 0
    for _ in range(3):
        for i in range(0, len(tensors), batch):
            x = tensors[i : i + batch].float().div_(255)
            seen += len(x)
    memory_rate = seen / (time.perf_counter() - start)
    return memory_rate, decode_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="f2r-bench-"))
    write_celeba(work / "celeba", args.images)
    cores = sorted({1, os.cpu_count() or 1})
    lines = [f"### Ingest — {os.cpu_count()} cores, {args.images} CelebA-sized JPEGs → 224² JPEG", "",
             f"Command: `python benchmarks/ingest.py --images {args.images}`", "",
             "| Ray CPUs | seconds (listing + Ray Data job, Ray already up) | images/s | images/s per core |", "|---|---|---|---|"]
    for n in cores:
        seconds, table_dir = ingest_seconds(work / "celeba", n)
        lines.append(f"| {n} | {seconds:.1f} | {args.images / seconds:.0f} | {args.images / seconds / n:.0f} |")
        print(lines[-1], flush=True)
    memory_rate, decode_rate = loader_rates(table_dir)
    lines += ["", "Training data path at 224², one core:", "",
              "| source | images/s |", "|---|---|",
              f"| in-memory uint8 tensors → float batches | {memory_rate:.0f} |",
              f"| stored JPEG → decode_jpeg (per epoch) | {decode_rate:.0f} |", "",
              f"Decoding every epoch at 2,500 images/s needs {2500 / decode_rate:.1f} cores per GPU; "
              "decoding once into memory (what `train/tensors.py` does today) needs none after the first epoch."]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
