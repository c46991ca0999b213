"""What a stage computes (``StageSpec``, its identity) and how it runs (``Resources``, not part
of its identity), and the config sections they come from: a stage's hyperparameters
(``train.real``, ``train.synthetic``, ``train.asb``) and how its workers read data
(``train.loader``). Plain data: the driver builds them, Ray Train's workers receive them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, Optional

from pydantic import Field

from fake2real import identity
from fake2real.data.storage import Location, relative_to
from fake2real.section_base import _Section

# Fields added after stages were stored join the key only when set: stored stages keep their names.
ADDED_LATER = {"pretrained": None, "keep_start": False, "hparams.lr_schedule": "constant", "hparams.freeze_bn": False,
               "input_size": None, "hparams.head_warmup_epochs": 0}


# A stage's checkpoint: the selected model (what the next stage or a post-hoc step starts from)
# and what a restarted stage resumes from. Declared here, not in loop.py, so that reading a
# checkpoint needs neither torch's training loop nor Ray Train.
BEST_MODEL = "best_model.pt"
RESUME_STATE = "resume_state.pt"
# ``pretrained``'s value for the model's ImageNet backbone (train/models.py).
IMAGENET = "imagenet"

# StageSpec's fields that name tables and files: those inside the workspace are keyed relative to it.
LOCATIONS = ("train_tables", "eval_table", "init_checkpoint", "pretrained")


class StageHparams(_Section):
    epochs: int = Field(8, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    batch_size: int = Field(128, ge=1)  # global: split evenly over train.num_workers
    # constant (the reference) or cosine: per step from lr down to 0 over the stage's epochs.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    # Batch-norm statistics frozen while training (the reference's --freeze_bn, for FFR's stage 2).
    freeze_bn: bool = False
    # LP-FT (beyond the reference, docs/protocol.md): the first epochs train the classifier head
    # alone on the starting model's features (backbone and its batch-norm statistics fixed), then
    # everything; counted in ``epochs``.
    head_warmup_epochs: int = Field(0, ge=0)


class LoaderConfig(_Section):
    """How a training worker reads its splits (train/splits.py, train/batches.py)."""

    # memory: every split decoded once into RAM (fastest); stream: each batch decoded from a local
    # memory-mapped copy of the encoded rows; auto: stream when the decoded images of the stage
    # (train + val + test) would exceed memory_limit_mb per worker.
    mode: Literal["auto", "memory", "stream"] = "auto"
    memory_limit_mb: float = Field(8192, gt=0)
    # Processes that decode streamed batches, per training worker; None: cpus_per_worker - 1
    # (0: the training process decodes them itself).
    workers: Optional[int] = Field(None, ge=0)
    # Batches fetched ahead of the step (per decoding process when streaming); 0: none.
    prefetch_batches: int = Field(2, ge=0)
    # Local folder for the streamed copies (removed when the stage ends); None: the temp folder.
    stream_dir: Optional[str] = None


@dataclass(frozen=True)
class StageSpec:
    """Everything that determines what a stage computes (and so its identity)."""

    name: str
    train_tables: tuple[str, ...]  # one table, or real + synthetic for a mixed stage
    eval_table: str
    method: str
    method_params: dict
    model: str
    hparams: dict
    seed: int
    init_checkpoint: str | None = None
    pretrained: str | None = None  # the backbone's weights: a local file or "imagenet" (IMAGENET)
    keep_start: bool = False  # the starting model competes in selection (train.keep_start)
    input_size: int | None = None  # images resized to this inside the model (train.input_size)
    # output_dir: where its tables and checkpoints are, when in it, enters the key relative to it
    # (not part of the key itself), so a workspace moved, copied or reached from another checkout
    # keeps its stages. None: every location as it is (as all were keyed before).
    workspace: str | None = None

    def key(self) -> str:
        return identity.key(self._keyed(None), ADDED_LATER)

    def legacy_key(self, root: str) -> str:
        """The key this stage had when keys held absolute locations and the workspace was at
        ``root``: what stages stored before are found by (``train/stage.finished_stage``)."""
        return identity.key(self._keyed(root), ADDED_LATER)

    def _keyed(self, root: str | None) -> dict:
        """Its fields as its key holds them: a location inside the workspace relative to it, or,
        given ``root``, absolute as it was with the workspace at ``root``."""
        data = asdict(self)
        del data["workspace"]
        if self.workspace is None:
            return data

        def keyed(location: str | None) -> str | None:
            inside = relative_to(location, self.workspace)
            if inside is None:  # outside the workspace (the user's files, URIs elsewhere) or a keyword
                return location
            return inside if root is None else str(Location(root) / inside)

        for name in LOCATIONS:
            value = data[name]
            data[name] = tuple(map(keyed, value)) if isinstance(value, tuple) else keyed(value)
        return data

    @property
    def run_name(self) -> str:
        """The Ray Train run's name: a stage run again resumes (or reuses) this run."""
        return f"{self.name}-{self.key()}"


@dataclass(frozen=True)
class Resources:
    """How a stage runs (not part of its key): workers, failures, checkpoints, data loading."""

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    max_failures: int = 0
    checkpoints_to_keep: int = 1
    loader: dict = field(default_factory=dict)  # LoaderConfig's fields; {} = its defaults
    compile: bool = False

    @classmethod
    def of(cls, train) -> "Resources":
        """From the config's ``train`` section."""
        return cls(train.num_workers, train.cpus_per_worker, train.use_gpu, train.max_failures, train.checkpoints_to_keep,
                   train.loader.model_dump(), train.compile)

    def bundle(self) -> dict[str, float]:
        """What one worker of the stage holds (Ray resource → amount)."""
        return {"CPU": self.cpus_per_worker, **({"GPU": 1.0} if self.use_gpu else {})}

    def describe(self) -> str:
        return f"training ({self.num_workers} worker(s) × {self.cpus_per_worker:g} CPU{' + 1 GPU' if self.use_gpu else ''}, train.*)"
