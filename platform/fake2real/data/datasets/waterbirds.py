"""Waterbirds: ``metadata.csv`` (``img_filename,y,split,place``) and its image folders.

Class y: landbird (0) / waterbird (1); bias: the place, land (0) / water (1); split 0/1/2 =
train/val/test.
"""

from __future__ import annotations

import csv
import io

from fake2real.data.datasets.base import NativeDataset
from fake2real.data.datasets._common import check_value, listing, read_text
from fake2real.errors import DataError

NAME = "waterbirds"
SPLITS = {"0": "train", "1": "val", "2": "test"}


def _checked(row: dict, columns: int, where: str) -> dict:
    """A row with every column filled and valid labels; ``where`` is ``<file>: line N``."""
    extra, short = row.get(None, []), sum(value is None for value in row.values())
    if extra or short:
        raise DataError(f"{where}: {columns + len(extra) - short} values for {columns} columns")
    if not row["img_filename"]:
        raise DataError(f"{where}: empty img_filename")
    check_value(row["y"], ("0", "1"), "y", where)
    check_value(row["place"], ("0", "1"), "place", where)
    check_value(row["split"], tuple(SPLITS), "split", where)
    return row


class Waterbirds(NativeDataset):
    name = NAME
    # Reference (mqraitem/From-Fake-to-Real, as Sagawa et al.): landbird (0) ↔ land (0), waterbird (1) ↔ water (1).
    MAJORITY_BIAS = {0: 0, 1: 1}
    # No base step in the reference (REFERENCE_BASE_RATIO None).

    @classmethod
    def names(cls, config) -> tuple[list[str], list[str]]:
        return ["landbird", "waterbird"], ["land", "water"]

    @classmethod
    def list_images(cls, config, fs, root: str):
        path = f"{root}/metadata.csv"
        reader = csv.DictReader(io.StringIO(read_text(fs, path)))
        missing = {"img_filename", "y", "split", "place"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"{path}: missing column {sorted(missing)[0]}")
        ids, paths, y, b, split = [], [], [], [], []
        for row in reader:
            row = _checked(row, len(reader.fieldnames), f"{path}: line {reader.line_num}")
            ids.append(f"{NAME}-{row['img_filename']}")
            paths.append(f"{root}/{row['img_filename']}")
            y.append(int(row["y"]))
            b.append(int(row["place"]))
            split.append(SPLITS[row["split"]])
        return listing(ids, paths, y, b, split)
