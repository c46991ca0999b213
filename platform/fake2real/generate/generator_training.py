"""Training the (class, bias)-conditional diffusion generator (``group_pipeline.py``) on Ray Train.

Like a stage (``train/stage.py``): a ``TorchTrainer`` named by the key of what it computes
(``GeneratorSpec``: the images it learns from, by their identity, and its training settings),
so running it again resumes from its latest checkpoint or, once ``generator.json`` — its done
marker — is there, reuses it. Every ``checkpoint_every`` optimizer steps each worker reports the
mean denoising loss since the last report; rank 0 adds a checkpoint holding the resume state
(UNet, EMA weights, optimizer, step) and a grid of samples of every group drawn with fixed
seeds (``samples.png``, logged to MLflow by ``MLflowGeneratorCallback``). The last checkpoint
holds the EMA weights as a diffusers folder, ``pipeline/``: the generator the backend loads.

Batches are sampled with replacement from a generator seeded by (seed, step, rank), and the
noise and timesteps likewise, so a resumed run draws what the uninterrupted one would have.
Images are the table's uint8 pixels scaled to [-1, 1]; the loss is the MSE of the predicted v.
"""

from __future__ import annotations

import io
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fake2real import identity
from fake2real.data.markers import read_marker, write_marker
from fake2real.data.storage import Location
from fake2real.errors import TrainingError
from fake2real.interrupt import off_main_thread

DONE_FILE = "generator.json"
RESUME_STATE = "resume_state.pt"
SAMPLES_FILE = "samples.png"
PIPELINE_FOLDER = "pipeline"
SAMPLE_SEED = 12345  # the grids' noise: the same images at every report, so they show progress
SAMPLES_PER_GROUP = 8


@dataclass(frozen=True)
class GeneratorSpec:
    """What a generator computes (its key) and the table it reads."""

    table: str  # the held-apart training table (where it is: not part of the key)
    data: dict  # what that table holds (the dataset's held_apart_key): part of the key
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    training: dict  # GeneratorTraining's computing fields (architecture, steps, batch, lr, EMA, seed)

    def key(self) -> str:
        return identity.key({"data": self.data, "groups": [list(self.class_names), list(self.bias_names)], "training": self.training})

    @property
    def run_name(self) -> str:
        return f"generator-{self.key()}"

    @property
    def num_groups(self) -> int:
        return len(self.class_names) * len(self.bias_names)


@dataclass(frozen=True)
class GeneratorResources:
    """How it runs (not part of its key)."""

    num_workers: int = 1
    cpus_per_worker: float = 2.0
    use_gpu: bool = False
    checkpoint_every: int = 500
    max_failures: int = 0


@dataclass(frozen=True)
class GeneratorJob:
    """A generator to train: what (``spec``), how (``resources``) and how its quality is judged."""

    spec: GeneratorSpec
    resources: GeneratorResources
    quality_images_per_group: int = 100
    quality_reader_epochs: int = 8
    sample_steps: int = 25  # DDIM steps of the quality check's images, as the pools are made
    eta: float = 0.0


def finished_generator(spec: GeneratorSpec, storage: str) -> dict | None:
    """The done marker's payload (``pipeline_uri``, ``metrics``, ``quality``) when trained earlier,
    its ``pipeline_uri`` in the run's folder where it is now (the workspace may have moved since)."""
    done = read_marker(Location(storage) / spec.run_name / DONE_FILE)
    if done is not None and f"/{spec.run_name}/" in done["pipeline_uri"]:
        done["pipeline_uri"] = str(Location(storage) / spec.run_name / done["pipeline_uri"].rpartition(f"/{spec.run_name}/")[2])
    return done


def mark_generator(spec: GeneratorSpec, storage: str, payload: dict) -> None:
    write_marker(Location(storage) / spec.run_name / DONE_FILE, payload)


def train_generator(spec: GeneratorSpec, resources: GeneratorResources, storage: str, callbacks: list | None = None) -> dict:
    """Train (or resume) the generator; ``{"pipeline_uri", "metrics"}`` of its last checkpoint."""
    import ray.train
    from ray.train import CheckpointConfig, FailureConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from fake2real.train.stage import checkpoint_uri

    trainer = TorchTrainer(
        generator_loop_per_worker,
        train_loop_config={"spec": spec, "resources": resources},
        scaling_config=ScalingConfig(num_workers=resources.num_workers, use_gpu=resources.use_gpu,
                                     resources_per_worker={"CPU": resources.cpus_per_worker}),
        torch_config=TorchConfig(backend="nccl" if resources.use_gpu else "gloo"),
        run_config=RunConfig(
            name=spec.run_name, storage_path=storage, checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=resources.max_failures),
            logging_config=LoggingConfig(log_level="WARNING"), callbacks=callbacks or [],
        ),
    )
    # Not on the main thread: Ray Train would put its own SIGINT handler there (interrupt.py).
    result = off_main_thread(trainer.fit)
    assert isinstance(result.checkpoint, ray.train.Checkpoint)
    uri = checkpoint_uri(result.checkpoint)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return {"key": spec.key(), "pipeline_uri": f"{uri}/{PIPELINE_FOLDER}", "metrics": metrics}


def _training_images(table: str, device):
    """The table's train rows as float images in [-1, 1] and their group labels (y · biases + b)."""
    import torch

    from fake2real.data.images import decode_rgb
    from fake2real.data.table import read_info, read_table

    info = read_info(table)
    rows = read_table(table, split="train", columns=["image", "y", "b"])
    images = torch.stack([decode_rgb(data) for data in rows["image"].to_pylist()]).float().div_(127.5).sub_(1.0)
    groups = torch.as_tensor(rows["y"].to_numpy() * info.num_biases + rows["b"].to_numpy())
    return images.to(device), groups.to(device)


def sample_grid(pipe, num_groups: int, steps: int = 25) -> bytes:
    """PNG of ``SAMPLES_PER_GROUP`` images of every group (a row each), from fixed seeds."""
    import numpy as np
    import torch
    from PIL import Image

    labels = [g for g in range(num_groups) for _ in range(SAMPLES_PER_GROUP)]
    generators = [torch.Generator().manual_seed(SAMPLE_SEED + i) for i in range(len(labels))]
    images = pipe(labels, generators, num_inference_steps=steps)
    rows = [np.concatenate(list(images[g * SAMPLES_PER_GROUP:(g + 1) * SAMPLES_PER_GROUP]), axis=1) for g in range(num_groups)]
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid = grid.resize((grid.width * 3, grid.height * 3), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    return buffer.getvalue()


def generator_loop_per_worker(config: dict) -> None:
    """``config["spec"]`` (``GeneratorSpec``) trained with ``config["resources"]`` (``GeneratorResources``)."""
    import logging

    import ray.train
    import ray.train.torch
    import torch
    import torch.nn.functional as F
    from diffusers import DDIMScheduler
    from diffusers.training_utils import EMAModel

    from fake2real.generate.group_pipeline import GroupDiffusionPipeline, build_unet, noise_schedule, save_pipeline
    from fake2real.runtime import quiet_own_tracebacks
    from fake2real.seeding import stable_seed

    logging.getLogger().setLevel(logging.WARNING)
    quiet_own_tracebacks()  # a TrainingError here is the driver's one error line, not a traceback per worker
    spec: GeneratorSpec = config["spec"]
    resources: GeneratorResources = config["resources"]
    settings = spec.training
    context = ray.train.get_context()
    rank, world, device = context.get_world_rank(), context.get_world_size(), ray.train.torch.get_device()
    images, groups = _training_images(spec.table, device)
    torch.manual_seed(settings["seed"])
    unet = build_unet(images.shape[-1], spec.num_groups, settings["channels"], settings["layers_per_block"], settings["attention"]).to(device)
    # Warm-up: the average ramps to ema_decay (1 − (1 + step)^−¾), so the random start fades out.
    ema = EMAModel(unet.parameters(), decay=settings["ema_decay"], use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=settings["lr"], weight_decay=0.0)
    model = ray.train.torch.prepare_model(unet) if world > 1 else unet
    schedule = noise_schedule()
    local_batch = max(1, settings["batch_size"] // world)
    step = _restore(ray.train.get_checkpoint(), unet, ema, optimizer)
    total, every = settings["steps"], resources.checkpoint_every
    losses, started, seen = [], time.perf_counter(), 0
    while step < total:
        draw = torch.Generator().manual_seed(stable_seed(settings["seed"], "generator", step, rank) % 2**63)
        index = torch.randint(0, len(images), (local_batch,), generator=draw)
        x0 = images[index.to(device)]
        noise = torch.randn(x0.shape, generator=draw).to(device)
        t = torch.randint(0, schedule.config.num_train_timesteps, (local_batch,), generator=draw).to(device)
        target = schedule.get_velocity(x0, noise, t)  # v-prediction (group_pipeline.noise_schedule)
        loss = F.mse_loss(model(schedule.add_noise(x0, noise, t), t, class_labels=groups[index.to(device)]).sample, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.step(unet.parameters())
        losses.append(loss.detach())
        step, seen = step + 1, seen + local_batch
        if step % every and step != total:
            continue
        mean_loss = _mean_over_workers(torch.stack(losses).mean(), world)
        if not math.isfinite(mean_loss):
            raise TrainingError(f"generator: the training loss is {mean_loss} at step {step} (lr {settings['lr']}); lower "
                                "generation.group_diffusion.training.lr")
        metrics = {"step": step, "train/loss": mean_loss, "train/images_per_second_per_worker": seen / (time.perf_counter() - started)}
        with tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if rank == 0:
                torch.save({"unet": unet.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(), "step": step},
                           Path(directory) / RESUME_STATE)
                shadow = build_unet(images.shape[-1], spec.num_groups, settings["channels"], settings["layers_per_block"],
                                    settings["attention"]).to(device)
                ema.copy_to(shadow.parameters())
                shadow.eval()
                pipe = GroupDiffusionPipeline(shadow, DDIMScheduler.from_config(schedule.config))
                (Path(directory) / SAMPLES_FILE).write_bytes(sample_grid(pipe, spec.num_groups))
                if step == total:
                    save_pipeline(shadow, Path(directory) / PIPELINE_FOLDER, list(spec.class_names), list(spec.bias_names))
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(metrics, checkpoint=checkpoint)
        losses, started, seen = [], time.perf_counter(), 0


def _mean_over_workers(value, world: int) -> float:
    import torch.distributed as dist

    if world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= world
    return float(value)


def _restore(checkpoint, unet, ema, optimizer) -> int:
    """The step to go on from: the latest checkpoint's state when there is one, else 0."""
    import torch

    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as directory:
        state = torch.load(Path(directory) / RESUME_STATE, map_location="cpu", weights_only=True)
    unet.load_state_dict(state["unet"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def result_payload(spec: GeneratorSpec, trained: dict, quality: dict) -> dict:
    return {**trained, "quality": quality, "spec": asdict(spec) | {"table": None}}
