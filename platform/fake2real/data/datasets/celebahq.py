"""CelebA-HQ (CelebAMask-HQ): ``CelebA-HQ-img/``, ``CelebAMask-HQ-attribute-anno.txt``.

No official split: a seeded, stable 80/10/10 split by image id (``dataset.split_seed``).
"""

from __future__ import annotations

from fake2real.data.datasets._common import attribute_flag, attribute_index, attribute_table, listing, read_text, seeded_split
from fake2real.data.datasets import celeba

NAME = "celebahq"
# Reference (mqraitem/From-Fake-to-Real, datasets/celeba.py, on CelebA-HQ): Smiling (1) ↔ Female (0), NotSmiling (0) ↔ Male (1).
MAJORITY_BIAS = {0: 1, 1: 0}
# That map is the reference's for class Smiling and bias Male only: other attributes need their
# own, named in dataset.majority_bias (ingest refuses to guess).
MAJORITY_BIAS_ATTRIBUTES = ("Smiling", "Male")
# Reference: train and valid are first cut to bias ratio 0.9 (rounded down), then to the chosen ratio.
REFERENCE_BASE_RATIO = 0.9


def names(config) -> tuple[list[str], list[str]]:
    """The same attribute naming as CelebA."""
    return celeba.names(config)


def list_images(config, fs, root: str):
    path = f"{root}/CelebAMask-HQ-attribute-anno.txt"
    attributes, rows = attribute_table(read_text(fs, path), path)
    ci = attribute_index(attributes, config.class_attribute, "class_attribute")
    bi = attribute_index(attributes, config.bias_attribute, "bias_attribute")
    ids, paths, y, b = [], [], [], []
    for number, row in rows:
        where = f"{path}: line {number}"
        ids.append(f"{NAME}-{row[0]}")
        paths.append(f"{root}/CelebA-HQ-img/{row[0]}")
        y.append(attribute_flag(row, ci, config.class_attribute, where))
        b.append(attribute_flag(row, bi, config.bias_attribute, where))
    return listing(ids, paths, y, b, seeded_split(ids, config.split_seed))
