"""Stable Diffusion generation throughput: the reference way vs our actor, and actor scaling.

    python benchmarks/generation.py --device cuda                 # SD 1.5 architecture, 512², 25 and 50 steps
    python benchmarks/generation.py --device cpu --tiny           # the CPU-scale version (tiny random model)

Random weights cost the same as trained ones, so no download is needed; ``--model DIR`` times a
real pipeline instead. Measures:
  (i)  reference: one process, batch 10, fp16, the pipeline's default scheduler, uncompiled;
  (ii) ours: the DiffusersBackend at its best settings (batch, channels_last, SDPA, compile);
  UNet TFLOP/s (FLOPs counted by torch's FlopCounterMode) against a measured bf16 matmul rate;
  (iii) the Ray Data job's images/s with 1..N actors (one GPU each; CPU-only: one core each).
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_sd: the tests' builder


def sd15_pipeline(folder: Path) -> Path:
    """A pipeline with SD 1.5's architecture and random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel
    from tiny_sd import _tokenizer

    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(
        block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4, sample_size=512,
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    )
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
                                        max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu", projection_dim=768))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1)
    StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=_tokenizer(), scheduler=scheduler,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False).save_pretrained(folder)
    return folder


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(device: str, dtype) -> float:
    n = 8192 if device == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, start = (50 if device == "cuda" else 5), time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def unet_flops_per_image_step(pipe, resolution: int, device: str, dtype) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    latents = torch.randn(2, 4, resolution // 8, resolution // 8, device=device, dtype=dtype)  # CFG: 2 rows per image
    context = torch.randn(2, 77, pipe.unet.config.cross_attention_dim, device=device, dtype=dtype)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        pipe.unet(latents, torch.tensor([10], device=device), encoder_hidden_states=context)
    return counter.get_total_flops()


def time_backend(backend, batch: int, rounds: int) -> float:
    prompts = ["a headshot of male celebrity smiling"] * batch
    backend.generate(np.zeros(batch), np.zeros(batch), prompts, list(range(batch)))  # warm-up / compile
    sync(backend.device)
    start = time.perf_counter()
    for r in range(rounds):
        backend.generate(np.zeros(batch), np.zeros(batch), prompts, list(range(r * batch, (r + 1) * batch)))
    sync(backend.device)
    return batch * rounds / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", help="a local diffusers pipeline (default: random SD 1.5 architecture)")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny pipeline (CPU scale)")
    parser.add_argument("--steps", type=int, nargs="+", default=[25, 50])
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="our actor's batch (default: 16 on GPU, 10 on CPU)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-actors", type=int, default=None)
    parser.add_argument("--scaling-images", type=int, default=None)
    args = parser.parse_args()

    from fake2real.generate.diffusers_backend import DiffusersBackend

    gpu = args.device == "cuda"
    resolution = args.resolution or (16 if args.tiny else 512)
    work = Path(tempfile.mkdtemp(prefix="f2r-bench-"))
    if args.model:
        model = args.model
    elif args.tiny:
        from tiny_sd import build_tiny_sd

        model = str(build_tiny_sd(work / "tiny", sample_size=resolution))
    else:
        model = str(sd15_pipeline(work / "sd15"))
    half = "float16" if gpu else "float32"  # fp16/bf16 matmuls are unusable on this CPU (no AVX512-BF16)
    best = "bfloat16" if gpu else "float32"
    lines = [
        f"### Generation — {torch.cuda.get_device_name() if gpu else platform.processor() or 'CPU'} ({os.cpu_count()} cores)",
        "",
        f"Command: `python benchmarks/generation.py {' '.join(sys.argv[1:])}`; "
        f"model: {'tiny random' if args.tiny else args.model or 'SD 1.5 architecture, random weights'}, {resolution}².",
        "",
        "| steps | reference images/s | ours images/s | speed-up | UNet TFLOP/s (ours) | share of matmul peak |",
        "|---|---|---|---|---|---|",
    ]
    peak = matmul_tflops(args.device, getattr(torch, best))
    for steps in args.steps:
        reference = DiffusersBackend({"model": model, "dtype": half, "device": args.device, "steps": steps, "resolution": resolution,
                                      "channels_last": False, "compile": False})
        ref_rate = time_backend(reference, 10, args.rounds)
        flops = unet_flops_per_image_step(reference.pipe, resolution, args.device, getattr(torch, half))
        del reference
        ours = DiffusersBackend({"model": model, "dtype": best, "device": args.device, "steps": steps, "resolution": resolution,
                                 "channels_last": True, "compile": gpu})
        our_rate = time_backend(ours, args.batch or (16 if gpu else 10), args.rounds)
        del ours
        tflops = our_rate * steps * flops / 1e12
        lines.append(f"| {steps} | {ref_rate:.3f} | {our_rate:.3f} | {our_rate / ref_rate:.2f}× | {tflops:.3g} | {tflops / peak:.1%} |")
        print(lines[-1], flush=True)
    lines += ["", f"Measured {best} matmul peak: {peak:.1f} TFLOP/s.", ""]
    lines += scaling(model, args, resolution, best)
    print("\n".join(lines))


def scaling(model: str, args, resolution: int, dtype: str) -> list[str]:
    """Images/s of the whole Ray Data job with 1..N actors."""
    import ray

    from fake2real.data.table import TableInfo
    from fake2real.generate.job import run_generation
    from fake2real.generate.plan import build_plan
    from fake2real.generate.prompts import load_template
    from fake2real.generate.spec import ActorPool, ImageSpec

    ray.init(log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    most = args.max_actors or (gpus if gpus else max(1, int(ray.cluster_resources()["CPU"])))
    template = load_template("celeba")
    steps = args.steps[0]
    rows = ["| actors | images | seconds | images/s | efficiency vs 1 actor |", "|---|---|---|---|---|"]
    base = None
    for actors in sorted({1, most}):
        n = (args.scaling_images or (64 if gpus else 800)) * actors
        counts = {g: n // 4 for g in template.all_groups()}
        _, plan = build_plan(counts, lambda y, b, s: template.prompt(y, b, s), {"bench": actors, "time": time.time()})
        out = Path(tempfile.mkdtemp(prefix="f2r-scale-")) / "table"
        settings = {"model": model, "dtype": dtype, "device": args.device, "steps": steps, "resolution": resolution}
        actor_pool = ActorPool(batch_size=16 if gpus else 8, min_actors=actors, num_actors=actors, cpus_per_actor=1.0, gpus_per_actor=1.0 if gpus else 0.0)
        start = time.perf_counter()
        run_generation(plan, out, TableInfo("celeba", template.class_names, template.bias_names, "synthetic"),
                       ImageSpec("diffusers", settings, image_format="jpeg"), actor_pool)
        seconds = time.perf_counter() - start
        rate = plan.num_rows / seconds
        base = base or rate
        rows.append(f"| {actors} | {plan.num_rows} | {seconds:.1f} | {rate:.2f} | {rate / (base * actors):.0%} |")
        print(rows[-1], flush=True)
    ray.shutdown()
    return [f"Ray Data job scaling ({steps} steps, {'1 GPU' if gpus else '1 CPU'} per actor, actor start-up included):", "", *rows, ""]


if __name__ == "__main__":
    main()
