"""Training throughput of one stage: in-memory tensors vs end-to-end from Parquet JPEG.

    python benchmarks/training.py                                  # CPU: small CNN 32², ResNet-50 224², 1 worker
    python benchmarks/training.py --gpu --workers 1 2 4 8 --images 32768   # a GPU node: bf16, scaling

For each model it writes a table of JPEG images (q95, smooth noise: ~25 KB at 224², like photos)
and trains the real stage loop (``train/loop.py`` on Ray Train) with the splits (a) decoded into
memory (``train.loader.mode=memory``) and (b) streamed: copied to a local memory-mapped file and
decoded per batch by loader processes (``mode=stream``). It reports images/s per worker of the
last epoch (the first warms up), the share of time the step waited for input, peak host and GPU
memory per worker, and the ratio b/a. It also times JPEG decoding alone (ms per image and core)
to say how many CPU cores per GPU the stream needs. Prints a Markdown block for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from fake2real.data.images import decode_rgb, encode_image
from fake2real.data.table import TableInfo, write_table
from fake2real.runtime import init_ray
from fake2real.track.train_callback import ReportLog
from fake2real.train.spec import Resources, StageSpec
from fake2real.train.stage import run_stage


def photo_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour fields plus mild noise: compresses and decodes like a photo, unlike white noise."""
    coarse = rng.integers(0, 256, (max(2, size // 16), max(2, size // 16), 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def write_benchmark_table(folder: Path, images: int, size: int) -> tuple[str, int]:
    rng = np.random.default_rng(0)
    pool = [encode_image(photo_like(rng, size), "jpeg", 95) for _ in range(min(images, 512))]
    splits = ["train"] * images + ["val"] * 64 + ["test"] * 64
    n = len(splits)
    table = pa.table(
        {
            "id": [f"img-{i:07d}" for i in range(n)],
            "image": pa.array([pool[i % len(pool)] for i in range(n)], pa.binary()),
            "y": [i % 2 for i in range(n)],
            "b": [(i // 2) % 2 for i in range(n)],
            "g": [0] * n,
            "split": splits,
        }
    )
    write_table(folder, table, TableInfo("benchmark", ["a", "b"], ["p", "q"], source="real"))
    return str(folder), int(np.mean([len(p) for p in pool]))


def decode_ms(table_bytes: list[bytes], rounds: int = 3) -> float:
    torch.set_num_threads(1)
    started = time.perf_counter()
    for _ in range(rounds):
        for data in table_bytes:
            decode_rgb(data)
    return (time.perf_counter() - started) / (rounds * len(table_bytes)) * 1000


def measure(table: str, model: str, mode: str, workers: int, args, root: Path) -> dict:
    hparams = {"epochs": args.epochs, "lr": 1e-3, "weight_decay": 1e-5, "batch_size": args.batch_size * workers}
    spec = StageSpec(f"bench-{model}-{mode}-{workers}", (table,), table, "erm", {}, model, hparams, seed=0)
    reports = root / f"{spec.name}.jsonl"
    resources = Resources(workers, args.cpus_per_worker, args.gpu, loader={"mode": mode}, compile=args.compile)
    started = time.perf_counter()
    result = run_stage(spec, resources, str(root / "runs"), [ReportLog(reports)])
    last = [json.loads(line) for line in reports.read_text().splitlines() if "train/loss" in line][-1]
    return {
        "images_per_second": last["train/images_per_second_per_worker"],
        "input_wait": last["train/input_wait_fraction"],
        "host_mb": result.metrics["memory/peak_host_mb"],
        "gpu_mb": result.metrics.get("memory/peak_gpu_mb", float("nan")),
        "seconds": time.perf_counter() - started,
    }


def _mb(value: float) -> str:
    return "—" if value != value else f"{value:.0f}"  # NaN: no GPU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["small_cnn:32", "resnet50:224"], help="model:image size")
    parser.add_argument("--images", type=int, nargs="+", default=[4096, 256], help="training images, per model")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--cpus-per-worker", type=float, default=2.0)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    images = args.images if len(args.images) == len(args.models) else args.images[:1] * len(args.models)

    init_ray()
    device = torch.cuda.get_device_name(0) if args.gpu else f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="training-bench-") as tmp:
        root = Path(tmp)
        for (name, size), count in zip((m.split(":") for m in args.models), images):
            table, jpeg_bytes = write_benchmark_table(root / f"table-{name}", count, int(size))
            sample = [encode_image(photo_like(np.random.default_rng(i), int(size)), "jpeg", 95) for i in range(64)]
            notes.append(f"{name} at {size}²: JPEG {jpeg_bytes / 1024:.1f} KB, decode {decode_ms(sample):.2f} ms per image on one core")
            for workers in args.workers:
                memory = measure(table, name, "memory", workers, args, root)
                stream = measure(table, name, "stream", workers, args, root)
                rows.append((name, size, count, workers, memory, stream))
                print(f"[bench] {name} {workers} worker(s): memory {memory['images_per_second']:.1f}/s, stream {stream['images_per_second']:.1f}/s", flush=True)

    print(f"\nDevice: {device}; batch {args.batch_size} per worker; {args.epochs} epochs (the last timed); "
          f"{args.cpus_per_worker:g} CPUs per worker; precision {'bf16 autocast' if args.gpu else 'fp32'}{', torch.compile' if args.compile else ''}.\n")
    print("| model | image | train images | workers | (a) in memory, img/s per worker | (b) Parquet JPEG stream, img/s per worker | b/a "
          "| input wait (a / b) | peak host MB (a / b) | peak GPU MB (a / b) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, size, count, workers, a, b in rows:
        print(
            f"| {name} | {size}² | {count} | {workers} | {a['images_per_second']:.1f} | {b['images_per_second']:.1f} | "
            f"{b['images_per_second'] / a['images_per_second']:.2f} | {a['input_wait']:.1%} / {b['input_wait']:.1%} | "
            f"{a['host_mb']:.0f} / {b['host_mb']:.0f} | {_mb(a['gpu_mb'])} / {_mb(b['gpu_mb'])} |"
        )
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
