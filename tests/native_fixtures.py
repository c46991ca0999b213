"""Tiny datasets written in each dataset's native layout (real JPEG files, 8×8 noise)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def write(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg(seed))


# CelebA groups (Smiling = y, Male = b) per official split.
CELEBA_COUNTS = {
    "train": {(0, 0): 6, (0, 1): 20, (1, 0): 20, (1, 1): 5},
    "val": {(0, 0): 4, (0, 1): 10, (1, 0): 10, (1, 1): 3},
    "test": {(0, 0): 3, (0, 1): 3, (1, 0): 3, (1, 1): 3},
}
ATTRIBUTES = ["5_o_Clock_Shadow", "Male", "Smiling", "Young"]


def _attribute_rows(groups) -> list[str]:
    rows = []
    for name, (y, b) in groups:
        values = {"5_o_Clock_Shadow": -1, "Male": 1 if b else -1, "Smiling": 1 if y else -1, "Young": 1}
        rows.append(f"{name} " + " ".join(f"{values[a]:2d}" for a in ATTRIBUTES))
    return rows


def celeba(root: Path, counts: dict | None = None) -> Path:
    """``counts``: per split, (Smiling, Male) → images (default ``CELEBA_COUNTS``)."""
    counts = CELEBA_COUNTS if counts is None else counts
    groups, partition, index = [], [], 0
    for split_code, split in enumerate(("train", "val", "test")):
        for group, n in counts[split].items():
            for _ in range(n):
                index += 1
                name = f"{index:06d}.jpg"
                write(root / "img_align_celeba" / name, index)
                groups.append((name, group))
                partition.append(f"{name} {split_code}")
    (root / "list_attr_celeba.txt").write_text(f"{len(groups)}\n" + " ".join(ATTRIBUTES) + "\n" + "\n".join(_attribute_rows(groups)) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    return root


def celebahq(root: Path, per_group: int = 30) -> Path:
    groups, index = [], 0
    for group in ((0, 0), (0, 1), (1, 0), (1, 1)):
        for _ in range(per_group):
            name = f"{index}.jpg"
            write(root / "CelebA-HQ-img" / name, index)
            groups.append((name, group))
            index += 1
    (root / "CelebAMask-HQ-attribute-anno.txt").write_text(f"{len(groups)}\n" + " ".join(ATTRIBUTES) + "\n" + "\n".join(_attribute_rows(groups)) + "\n")
    return root


def utkface(root: Path, per_group: int = 30) -> Path:
    """Ages 2 (young) and 30 (old) for both genders, plus ages 10 and 60 that the bins drop."""
    index = 0
    for gender in (0, 1):
        for age in (2, 30):
            for _ in range(per_group):
                write(root / f"{age}_{gender}_0_2017010{index % 10}{index:05d}.jpg.chip.jpg", index)
                index += 1
        for age in (10, 60):
            write(root / f"{age}_{gender}_1_20170109{index:05d}.jpg.chip.jpg", index)
            index += 1
    return root


def spuco_animals(root: Path, per_group: int = 3) -> Path:
    layout = {
        "spuco_birds": {"landbirds": ("land", "water"), "waterbirds": ("land", "water")},
        "spuco_dogs": {"small_dogs": ("indoor", "outdoor"), "big_dogs": ("indoor", "outdoor")},
    }
    index = 0
    for family, classes in layout.items():
        for split in ("train", "val", "test"):
            for class_name, biases in classes.items():
                for bias in biases:
                    for i in range(per_group):
                        write(root / family / split / class_name / bias / f"{i}.jpg", index)
                        index += 1
    return root


# Waterbirds groups (y, place) per split code.
WATERBIRDS_COUNTS = {
    0: {(0, 0): 10, (0, 1): 2, (1, 0): 3, (1, 1): 10},
    1: {(0, 0): 2, (0, 1): 2, (1, 0): 2, (1, 1): 2},
    2: {(0, 0): 2, (0, 1): 2, (1, 0): 2, (1, 1): 2},
}


def waterbirds(root: Path) -> Path:
    lines, index = ["img_id,img_filename,y,split,place,place_filename"], 0
    for split, groups in WATERBIRDS_COUNTS.items():
        for (y, place), n in groups.items():
            for _ in range(n):
                index += 1
                name = f"{index:03d}.Bird_{y}/Bird_{index:04d}.jpg"
                write(root / name, index)
                lines.append(f"{index},{name},{y},{split},{place},/x/{index}.jpg")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def image(seed: int, size: int = 16, image_format: str = "PNG", mode: str = "RGB") -> bytes:
    """A size × size noise image, encoded as ``image_format``."""
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    pixels = np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=image_format)
    return buffer.getvalue()


def write_metadata(path: Path, rows: list[dict]) -> Path:
    """``rows`` as CSV or Parquet, by ``path``'s suffix."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    return path


# The folder layout's groups (class, bias) per split: cat ↔ indoor and dog ↔ outdoor are the majorities.
FOLDER_COUNTS = {
    "train": {("cat", "indoor"): 10, ("cat", "outdoor"): 3, ("dog", "indoor"): 3, ("dog", "outdoor"): 10},
    "val": {("cat", "indoor"): 2, ("cat", "outdoor"): 2, ("dog", "indoor"): 2, ("dog", "outdoor"): 2},
    "test": {("cat", "indoor"): 2, ("cat", "outdoor"): 2, ("dog", "indoor"): 2, ("dog", "outdoor"): 2},
}


def folder_rows(root: Path, counts: dict | None = None, size: int = 16, split_column: bool = True) -> list[dict]:
    """Writes the images of the ``folder`` layout under ``root`` and returns their metadata rows:
    PNG and JPEG in turn (every third one 8 × 8, the others ``size``²)."""
    rows, index = [], 0
    for split, groups in (FOLDER_COUNTS if counts is None else counts).items():
        for (class_name, bias), n in groups.items():
            for _ in range(n):
                image_format, suffix = ("PNG", "png") if index % 2 == 0 else ("JPEG", "jpg")
                name = f"images/{class_name}/{index:03d}.{suffix}"
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(image(index, 8 if index % 3 == 2 else size, image_format))
                rows.append({"path": name, "class": class_name, "bias": bias, **({"split": split} if split_column else {})})
                index += 1
    return rows


def folder(root: Path, counts: dict | None = None, metadata: str = "metadata.csv", size: int = 16, split_column: bool = True) -> Path:
    """The ``folder`` dataset's layout: images under ``root`` and one metadata file (CSV or Parquet)."""
    write_metadata(root / metadata, folder_rows(root, counts, size, split_column))
    return root


def synthetic_folder(root: Path, per_group: int = 3, metadata: str = "metadata.csv", size: int = 16, groups=None) -> Path:
    """Synthetic images made elsewhere, for ``generation.backend: folder``: path, class, bias,
    prompt, seed, model; rows of the groups interleaved (the import keeps each group's order)."""
    groups = groups or [("cat", "indoor"), ("cat", "outdoor"), ("dog", "indoor"), ("dog", "outdoor")]
    rows = []
    for i in range(per_group):
        for class_name, bias in reversed(groups):
            index = len(rows)
            name = f"gen/{class_name}_{bias}_{i}.png"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(image(1000 + index, size, "PNG"))
            rows.append({"path": name, "class": class_name, "bias": bias, "prompt": f"a photo of a {class_name} {bias}",
                         "seed": 100 + index, "model": "sdxl-turbo"})
    write_metadata(root / metadata, rows)
    return root


def _idx(path: Path, data: np.ndarray, magic: int) -> None:
    import gzip

    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in data.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as out:
        out.write(header + data.astype(np.uint8).tobytes())


def fashion_mnist(root: Path, train_per_class: int = 80, test_per_class: int = 60) -> Path:
    """Fashion-MNIST's four IDX files (as Debian installs them): 10 classes, labels cycling, 28×28
    grey "garments" (a bright rectangle on black with noise)."""
    rng = np.random.default_rng(0)
    for file, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.tile(np.arange(10), per_class)
        images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
        images[:, 6:22, 8:20] = rng.integers(120, 255, (len(labels), 16, 12))
        _idx(root / f"{file}-images-idx3-ubyte.gz", images, 2051)
        _idx(root / f"{file}-labels-idx1-ubyte.gz", labels, 2049)
    return root
