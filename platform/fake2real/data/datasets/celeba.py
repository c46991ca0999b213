"""CelebA as distributed: ``img_align_celeba/``, ``list_attr_celeba.txt``, ``list_eval_partition.txt``.

Any attribute can be the class and any other the bias (default as the paper: class Smiling,
bias Male). Splits are the official partition (0 train, 1 val, 2 test).
"""

from __future__ import annotations

from fake2real.data.datasets._common import attribute_index, attribute_table, listing, read_text
from fake2real.errors import DataError

NAME = "celeba"
SPLITS = {"0": "train", "1": "val", "2": "test"}
# Reference (mqraitem/From-Fake-to-Real, datasets/celeba.py): Smiling (1) ↔ Female (0), NotSmiling (0) ↔ Male (1).
MAJORITY_BIAS = {0: 1, 1: 0}
# That map is the reference's for class Smiling and bias Male only: other attributes need their
# own, named in dataset.majority_bias (ingest refuses to guess).
MAJORITY_BIAS_ATTRIBUTES = ("Smiling", "Male")
# Reference: train and valid are first cut to bias ratio 0.9 (rounded down), then to the chosen ratio.
REFERENCE_BASE_RATIO = 0.9


def names(config) -> tuple[list[str], list[str]]:
    c, b = config.class_attribute.lower(), config.bias_attribute.lower()
    return [f"not_{c}", c], [f"not_{b}", b]


def list_images(config, fs, root: str):
    attr_path = f"{root}/list_attr_celeba.txt"
    part_path = f"{root}/list_eval_partition.txt"
    attributes, rows = attribute_table(read_text(fs, attr_path), attr_path)
    ci = attribute_index(attributes, config.class_attribute, "class_attribute")
    bi = attribute_index(attributes, config.bias_attribute, "bias_attribute")
    partition = {}
    for line in read_text(fs, part_path).splitlines():
        if line.strip():
            name, split = line.split()
            partition[name] = SPLITS.get(split)
    ids, paths, y, b, split = [], [], [], [], []
    for row in rows:
        name = row[0]
        if partition.get(name) is None:
            raise DataError(f"{part_path}: no split (0/1/2) for {name}")
        ids.append(f"{NAME}-{name}")
        paths.append(f"{root}/img_align_celeba/{name}")
        y.append(int(row[1 + ci] == "1"))
        b.append(int(row[1 + bi] == "1"))
        split.append(partition[name])
    return listing(ids, paths, y, b, split)
