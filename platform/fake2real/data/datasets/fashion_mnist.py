"""``fashion_mnist``: a real benchmark that runs offline (docs/results/fashion.md).

Real photos: Fashion-MNIST as Debian's ``dataset-fashion-mnist`` installs it (Zalando SE, Expat
licence), the four IDX files ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` under
``dataset.root`` (default ``/usr/share/datasets/fashion-mnist``).

- Y: two (or more) product classes that a model must look at to tell apart
  (``dataset.fashion_mnist.classes``; default pullover vs coat).
- B: a background tint, warm (0) or cool (1), given to every image by a documented deterministic
  rule: ``u = stable_seed("fashion_mnist", split_seed, file, index)``, ``b = u % 2``. The garment's
  grey level is its opacity over the tint (``tint``), so the garment is unchanged and every
  (Y, B) group exists in the native pool. The tint is trivially easy to learn; the garment's shape
  is not.
- Images are 28² padded to 32² with the background (a size a small diffusion UNet halves
  cleanly), stored as PNG (lossless).

Splits, each image in exactly one part (by ``v = u // 2``):

- the training file's images of each class are cut in two by ``v % 1000 < 1000 · generator_share``:
  the **held-apart** part trains the generator (``held_apart_table``, group-balanced) and is never
  trained, validated or tested on by the benchmark; the rest is the benchmark's training pool,
  ``train_per_group`` per (y, b) at most, then subsampled by the paper's bias-ratio rule;
- the test file (t10k) gives validation then test: per group, the first ``val_per_group`` then
  the next ``test_per_group`` in ``v`` order. Both are group-balanced and not subsampled
  (docs/protocol.md, "The Fashion-MNIST benchmark").
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from fake2real.data.datasets.base import Dataset, DatasetSettings, Section
from fake2real.data.groups import check_splits, subsample_mask
from fake2real.data.images import encode_image
from fake2real.data.table import REAL, TableInfo, count_groups, group_name, write_table
from fake2real.errors import DataError
from fake2real.seeding import stable_seed

NAME = "fashion_mnist"
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
INSTALL_HINT = "apt-get install dataset-fashion-mnist"
LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
BIAS_NAMES = ["warm", "cool"]
TINTS = np.array([[0.78, 0.45, 0.30], [0.30, 0.48, 0.78]])  # background RGB in 0..1, by b
STORED_SIZE = 32
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


class FashionWorld(DatasetSettings):
    """``dataset.fashion_mnist``: which classes, and how the native images are shared out."""

    classes: list[str] = ["pullover", "coat"]
    # Share of each class's training-file images held apart for the generator (never the benchmark's).
    generator_share: float = Field(0.5, gt=0.0, lt=1.0)
    # Cap of each (y, b) group of the benchmark's training pool, before subsampling (None: all).
    train_per_group: Optional[int] = Field(None, ge=1)
    val_per_group: int = Field(100, ge=1)
    test_per_group: int = Field(380, ge=1)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in LABELS]
        if unknown:
            raise ValueError(f"dataset.fashion_mnist.classes: unknown class '{unknown[0]}' (known: {', '.join(LABELS)})")
        if len(value) < 2 or len(set(value)) != len(value):
            raise ValueError(f"dataset.fashion_mnist.classes: needs at least 2 distinct classes, got {value}")
        return value


def root_of(config: Section) -> str:
    return config.root or DEFAULT_ROOT


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    try:
        with gzip.open(path) as stream:
            data = stream.read()
    except FileNotFoundError:
        raise DataError(f"dataset.root: no Fashion-MNIST file {path} (install it with: {INSTALL_HINT})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"dataset.root: {path} is not a readable gzip file ({str(exc)[:80]})") from None
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)) if len(data) >= header else ()
    if len(data) < header or int.from_bytes(data[:4], "big") != magic or len(data) != header + int(np.prod(shape)):
        raise DataError(f"dataset.root: {path} is not an IDX file of {dims} dimension(s) (bad header or size)")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=2)
def read_native(root: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """file ("train", "t10k") → (28×28 uint8 images, labels 0..9), as the IDX files hold them."""
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"dataset.root: no folder at {root} (Fashion-MNIST: install it with: {INSTALL_HINT})")
    out = {}
    for file, (images_name, labels_name) in FILES.items():
        images = _read_idx(folder / images_name, 2051, 3)
        labels = _read_idx(folder / labels_name, 2049, 1)
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise DataError(f"dataset.root: {folder / images_name} holds {images.shape} images for {len(labels)} labels")
        out[file] = (images, labels)
    return out


def tint(gray: np.ndarray, b: int) -> np.ndarray:
    """28×28 grey garment on black → 32×32 RGB uint8: grey level = opacity over the background tint."""
    alpha = np.pad(gray, 2)[..., None].astype(np.float64) / 255.0
    return (255.0 * (alpha + (1.0 - alpha) * TINTS[b]) + 0.5).astype(np.uint8)


def _rule(split_seed: int, file: str, count: int) -> np.ndarray:
    return np.array([stable_seed(NAME, split_seed, file, i) for i in range(count)], dtype=np.uint64)


def _pool(config: Section) -> pa.Table:
    """Every native image of the chosen classes with its (y, b), part and order, no pixels:
    part ``train`` / ``val`` / ``test`` / ``held_apart``; ``index`` into its file."""
    world = config.fashion_mnist
    native = read_native(root_of(config))
    label_of = {LABELS.index(name): y for y, name in enumerate(world.classes)}
    columns: dict[str, list] = {"id": [], "y": [], "b": [], "split": [], "file": [], "index": []}
    for file, (_, labels) in native.items():
        u = _rule(config.split_seed, file, len(labels))
        b, order = (u % 2).astype(np.int64), (u // 2)
        chosen = np.flatnonzero(np.isin(labels, list(label_of)))
        y = np.array([label_of[int(labels[i])] for i in chosen], dtype=np.int64)
        part = np.empty(len(chosen), dtype=object)
        if file == "train":
            held = (order[chosen] % 1000) < round(1000 * world.generator_share)
            part[:] = np.where(held, "held_apart", "train")
            caps = {"train": world.train_per_group}
        else:
            part[:] = "spare"
            caps = {}
        for yy in range(len(world.classes)):
            for bb in range(2):
                members = np.flatnonzero((y == yy) & (b[chosen] == bb))
                members = members[np.argsort(order[chosen][members], kind="stable")]
                if file == "t10k":
                    need = world.val_per_group + world.test_per_group
                    if len(members) < need:
                        raise DataError(
                            f"dataset.fashion_mnist: group {group_name(yy, bb)} ({world.classes[yy]}, {BIAS_NAMES[bb]}) has "
                            f"{len(members)} test-file images; val_per_group + test_per_group = {need}"
                        )
                    part[members[: world.val_per_group]] = "val"
                    part[members[world.val_per_group: need]] = "test"
                elif caps["train"] is not None:
                    in_train = members[part[members] == "train"]
                    part[in_train[caps["train"]:]] = "unused"
        keep = np.isin(part, ["train", "val", "test", "held_apart"])
        columns["id"] += [f"{NAME}-{file}-{i:05d}" for i in chosen[keep]]
        columns["y"] += y[keep].tolist()
        columns["b"] += b[chosen][keep].tolist()
        columns["split"] += part[keep].tolist()
        columns["file"] += [file] * int(keep.sum())
        columns["index"] += chosen[keep].tolist()
    return pa.table(columns)


def held_apart_rows(config: Section) -> pa.Table:
    """The generator's training images (no pixels): the held-apart part, group-balanced (every
    group cut to the smallest), all with split ``train``."""
    pool = _pool(config)
    held = pool.filter(pa.array(np.asarray(pool["split"].to_pylist()) == "held_apart"))
    y, b = held["y"].to_numpy(), held["b"].to_numpy()
    groups = [(yy, bb) for yy in range(len(config.fashion_mnist.classes)) for bb in range(2)]
    smallest = min(int(((y == yy) & (b == bb)).sum()) for yy, bb in groups)
    if smallest == 0:
        raise DataError(f"dataset.fashion_mnist: a held-apart group is empty (generator_share={config.fashion_mnist.generator_share})")
    keep = np.zeros(held.num_rows, dtype=bool)
    for yy, bb in groups:
        keep[np.flatnonzero((y == yy) & (b == bb))[:smallest]] = True  # already in rule order
    held = held.filter(pa.array(keep))
    return held.set_column(held.column_names.index("split"), "split", pa.array(["train"] * held.num_rows))


def _write(config: Section, rows: pa.Table, path, info: TableInfo) -> TableInfo:
    native = read_native(root_of(config))
    images = [encode_image(tint(native[file][0][index], b), "png")
              for file, index, b in zip(rows["file"].to_pylist(), rows["index"].to_pylist(), rows["b"].to_pylist())]
    table = rows.drop_columns(["file", "index"])
    table = table.append_column("image", pa.array(images, pa.binary())).append_column("g", pa.array([REAL] * rows.num_rows, pa.int64()))
    write_table(path, table, info)
    return info


def prompt(y: int, b: int, seed: int | None = None, bias_words: bool = True) -> str:
    """The group's description, recorded as provenance (the generator is conditioned on the group itself)."""
    return f"group y{y}_b{b}: class {y}, {BIAS_NAMES[b]} background" if bias_words else f"group y{y}: class {y}"


class FashionMnist(Dataset):
    name = NAME
    Settings = FashionWorld
    reads = ("root",)  # its images are tinted and stored at 32² by its own rule
    MAJORITY_BIAS = {0: 0, 1: 1}  # class i's majority tint: warm for the first class, cool for the second
    default_root = DEFAULT_ROOT

    @classmethod
    def names(cls, config: Section) -> tuple[list[str], list[str]]:
        return list(config.fashion_mnist.classes), list(BIAS_NAMES)

    @classmethod
    def stored_image_size(cls, config: Section) -> int:
        return STORED_SIZE

    @classmethod
    def prompts(cls, config: Section):
        return prompt

    @classmethod
    def listing(cls, config: Section) -> pa.Table:
        """The real table's rows (no pixels): the training pool after the bias-ratio rule (train
        only), validation and test balanced; what a dry run counts."""
        from fake2real.data.ingest import majority_map

        majority = majority_map(config, cls)
        pool = _pool(config)
        table = pool.filter(pa.array(np.asarray(pool["split"].to_pylist()) != "held_apart"))
        if config.bias_ratio is not None:
            split = np.asarray(table["split"].to_pylist())
            train = split == "train"
            keep = np.ones(table.num_rows, dtype=bool)
            ids = np.asarray(table["id"].to_pylist(), dtype=object)
            keep[train] = subsample_mask(table["y"].to_numpy()[train], table["b"].to_numpy()[train], ids[train], majority,
                                         config.bias_ratio, 0, seed=stable_seed(config.split_seed, "train"))
            table = table.filter(pa.array(keep))
        groups = [group_name(y, b) for y in range(len(config.fashion_mnist.classes)) for b in range(2)]
        check_splits(count_groups(table), groups, NAME, config.bias_ratio)
        return table

    @classmethod
    def held_apart_key(cls, config: Section) -> dict:
        """What the held-apart images depend on: not the bias ratio, nor validation or test sizes."""
        world = config.fashion_mnist
        return {"dataset": NAME, "root": config.root, "split_seed": config.split_seed, "classes": world.classes,
                "generator_share": world.generator_share}

    @classmethod
    def build_real_table(cls, config: Section, path) -> TableInfo:
        """Tint and write the kept rows (``listing``) as the real table at ``path``."""
        rows = cls.listing(config)
        class_names, bias_names = cls.names(config)
        extra = {"root": root_of(config), "world": config.fashion_mnist.model_dump(), "image_size": STORED_SIZE}
        return _write(config, rows, path, TableInfo(NAME, class_names, bias_names, "real", extra=extra))

    @classmethod
    def held_apart_table(cls, config: Section, path) -> TableInfo:
        """The generator's training table at ``path`` (source real, split train)."""
        class_names, bias_names = cls.names(config)
        extra = {"root": root_of(config), "held_apart": cls.held_apart_key(config), "image_size": STORED_SIZE}
        return _write(config, held_apart_rows(config), path, TableInfo(NAME, class_names, bias_names, "real", extra=extra))
