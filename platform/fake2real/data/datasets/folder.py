"""``folder``: your own dataset without code — a folder of images and one metadata file.

``dataset.root`` holds the images and the metadata file (``dataset.metadata``; default
``metadata.csv``, else ``metadata.parquet``), one row per image: ``path`` (relative to the root),
``class``, ``bias`` and optionally ``split`` (train / val / test; absent: a seeded 80/10/10 split
by ``dataset.split_seed``). Value names are ``dataset.class_names`` / ``dataset.bias_names`` in
index order (labels may then be names or indices), else the labels' distinct values, sorted.

There is no reference majority map: with a ``bias_ratio``, ``dataset.majority_bias`` names each
class's majority bias (``ingest.majority_map`` asks for it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from fake2real.data.datasets._common import listing, seeded_split
from fake2real.data.datasets.base import FILE_FIELDS, NativeDataset
from fake2real.data.metadata import Metadata, metadata_digest, read_metadata, relative_paths, resolve_labels
from fake2real.errors import DataError

NAME = "folder"
SPLITS = ("train", "val", "test")
COLUMNS = ("path", "class", "bias")
FOLDER_FIELDS = ("metadata", "class_names", "bias_names")  # the shared fields only it reads


def _check_groups(meta: Metadata, y: np.ndarray, b: np.ndarray, class_names: list[str], bias_names: list[str]) -> None:
    """Two classes and two bias values at least, and every class seen with two bias values: a
    class with one bias value has no minority group, so its bias cannot be studied."""
    for kind, names in (("classes", class_names), ("bias values", bias_names)):
        if len(names) < 2:
            raise DataError(f"{meta.name}: the folder dataset needs at least 2 {kind}, found {len(names)} ({', '.join(names)})")
    for column, labels, names in (("class", y, class_names), ("bias", b, bias_names)):
        _check_rare(meta, column, labels, names)
    for cls, name in enumerate(class_names):
        biases = sorted(set(b[y == cls].tolist()))
        if not biases:
            raise DataError(f"{meta.name}: class '{name}' has no rows")
        if len(biases) == 1:
            raise DataError(f"{meta.name}: class '{name}' has only one bias value ('{bias_names[biases[0]]}'): its bias cannot be studied")
    unseen = sorted(set(range(len(bias_names))) - set(b.tolist()))
    if unseen:
        raise DataError(f"{meta.name}: bias '{bias_names[unseen[0]]}' has no rows")


def _check_rare(meta: Metadata, column: str, labels: np.ndarray, names: list[str]) -> None:
    """A value on fewer rows than there are splits can give none of its groups rows in train, val
    and test: most likely a stray label (a ``2`` among 0s and 1s), named with its first line here
    rather than as an empty group of a split later."""
    counts = np.bincount(labels, minlength=len(names))
    rare = [value for value in range(len(names)) if 0 < counts[value] < len(SPLITS)]
    if rare:
        value = min(rare, key=lambda v: (counts[v], int(np.flatnonzero(labels == v)[0])))
        first, unit = int(np.flatnonzero(labels == value)[0]), "line" if meta.is_csv else "row"
        on = f"this {unit} only" if counts[value] == 1 else f"{counts[value]} {unit}s only (the first here)"
        raise DataError(f"{meta.name}: {meta.where(first)}: {column} '{names[value]}' is on {on}: too few for its groups "
                        "to have train, val and test rows (a stray value?)")


def _labelled(config) -> tuple[Metadata, np.ndarray, np.ndarray, list[str], list[str]]:
    meta = read_metadata(config.root, config.metadata, COLUMNS, "the folder dataset")
    y, class_names = resolve_labels(meta, "class", config.class_names)
    b, bias_names = resolve_labels(meta, "bias", config.bias_names)
    y, b = y.to_numpy(), b.to_numpy()
    _check_groups(meta, y, b, class_names, bias_names)
    return meta, y, b, class_names, bias_names


def _splits(meta: Metadata) -> list[str]:
    values = meta.column("split")
    for row, value in enumerate(values):
        if value not in SPLITS:
            got = f"'{value}'" if value is not None else "an empty cell"
            raise DataError(f"{meta.name}: {meta.where(row)}: split must be train, val or test, got {got}")
    return values


class Folder(NativeDataset):
    name = NAME
    reads = FILE_FIELDS + FOLDER_FIELDS
    # No reference majority map: dataset.majority_bias names it when a bias_ratio subsamples.
    # Its images are the user's, edited in place while the metadata (the table's name) stays: the real
    # table records each file's size and modification time, checked on every later run (data/sources.py).
    records_sources = True

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        for field in ("class_names", "bias_names"):
            given = getattr(config, field)
            if given is not None and (len(given) < 2 or len(set(given)) != len(given)):
                raise ValueError(f"dataset.{field}: needs at least 2 distinct names, got {given}")

    @classmethod
    def sources_key(cls, config) -> str:
        """Its rows are in the user's metadata file: an edited file is another table."""
        return metadata_digest(config.root, config.metadata)

    @classmethod
    def names(cls, config) -> tuple[list[str], list[str]]:
        if config.class_names is not None and config.bias_names is not None:
            return list(config.class_names), list(config.bias_names)
        _, _, _, class_names, bias_names = _labelled(config)
        return class_names, bias_names

    @classmethod
    def list_images(cls, config, fs, root: str) -> pa.Table:
        meta, y, b, _, _ = _labelled(config)
        paths = relative_paths(meta)
        ids = [f"{NAME}-{path}" for path in paths]
        split = _splits(meta) if "split" in meta.table.column_names else seeded_split(ids, config.split_seed)
        return listing(ids, [f"{root}/{path}" for path in paths], y, b, split)
