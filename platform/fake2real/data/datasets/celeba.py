"""CelebA as distributed: ``img_align_celeba/``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``.

Any attribute can be the class and any other the bias (default as the paper: class Smiling,
bias Male). Splits are the official partition (0 train, 1 val, 2 test).
"""

from __future__ import annotations

from fake2real.data.datasets.base import FILE_FIELDS, NativeDataset
from fake2real.data.datasets._common import (
    attribute_flag, attribute_index, attribute_table, check_value, listing, numbered_lines, read_text,
)
from fake2real.errors import DataError

NAME = "celeba"
SPLITS = {"0": "train", "1": "val", "2": "test"}
ATTRIBUTE_FIELDS = ("class_attribute", "bias_attribute")  # the shared fields CelebA and CelebA-HQ read


def read_partition(text: str, path: str) -> dict[str, str]:
    """``list_eval_partition.txt``: ``<image> <partition>`` per line → image → split name."""
    partition: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, fields in numbered_lines(text):
        where = f"{path}: line {number}"
        if len(fields) != 2:
            raise DataError(f"{where}: expected '<image> <partition>', got {' '.join(fields)!r}")
        name, code = fields
        if name in first:
            raise DataError(f"{where}: {name} is listed twice (first at line {first[name]})")
        first[name] = number
        partition[name] = SPLITS[check_value(code, tuple(SPLITS), "partition", where)]
    return partition


class CelebA(NativeDataset):
    name = NAME
    reads = FILE_FIELDS + ATTRIBUTE_FIELDS
    # Reference (mqraitem/From-Fake-to-Real, datasets/celeba.py): Smiling (1) ↔ Female (0), NotSmiling (0) ↔ Male (1).
    MAJORITY_BIAS = {0: 1, 1: 0}
    # That map is the reference's for class Smiling and bias Male only: other attributes need their
    # own, named in dataset.majority_bias (ingest refuses to guess).
    MAJORITY_BIAS_ATTRIBUTES = ("Smiling", "Male")
    # Reference: train and valid are first cut to bias ratio 0.9 (rounded down), then to the chosen ratio.
    REFERENCE_BASE_RATIO = 0.9

    @classmethod
    def names(cls, config) -> tuple[list[str], list[str]]:
        c, b = config.class_attribute.lower(), config.bias_attribute.lower()
        return [f"not_{c}", c], [f"not_{b}", b]

    @classmethod
    def list_images(cls, config, fs, root: str):
        attr_path = f"{root}/list_attr_celeba.txt"
        part_path = f"{root}/list_eval_partition.txt"
        attributes, rows = attribute_table(read_text(fs, attr_path), attr_path)
        ci = attribute_index(attributes, config.class_attribute, "class_attribute")
        bi = attribute_index(attributes, config.bias_attribute, "bias_attribute")
        partition = read_partition(read_text(fs, part_path), part_path)
        ids, paths, y, b, split = [], [], [], [], []
        for number, row in rows:
            name, where = row[0], f"{attr_path}: line {number}"
            if name not in partition:
                raise DataError(f"{part_path}: no partition for {name} (listed at line {number} of list_attr_celeba.txt)")
            ids.append(f"{NAME}-{name}")
            paths.append(f"{root}/img_align_celeba/{name}")
            y.append(attribute_flag(row, ci, config.class_attribute, where))
            b.append(attribute_flag(row, bi, config.bias_attribute, where))
            split.append(partition[name])
        return listing(ids, paths, y, b, split)
