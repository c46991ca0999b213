"""CelebA-HQ (CelebAMask-HQ): ``CelebA-HQ-img/``, ``CelebAMask-HQ-attribute-anno.txt``.

No official split: a seeded, stable 80/10/10 split by image id (``dataset.split_seed``).
"""

from __future__ import annotations

from fake2real.data.datasets._common import attribute_flag, attribute_index, attribute_table, listing, read_text, seeded_split
from fake2real.data.datasets.celeba import CelebA

NAME = "celebahq"


class CelebAHQ(CelebA):
    """The same attributes, naming, reference map and base ratio as CelebA; its own layout."""

    name = NAME

    @classmethod
    def list_images(cls, config, fs, root: str):
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
