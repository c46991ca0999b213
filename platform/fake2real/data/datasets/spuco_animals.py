"""SpuCo Animals: ``spuco_birds/{split}/{landbirds,waterbirds}/{land,water}/`` and
``spuco_dogs/{split}/{small_dogs,big_dogs}/{indoor,outdoor}/``: 4 classes, 4 bias values, 8 groups.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from fake2real.data.datasets._common import list_files, listing

NAME = "spuco_animals"
CLASS_NAMES = ["landbirds", "waterbirds", "small_dogs", "big_dogs"]
BIAS_NAMES = ["land", "water", "indoor", "outdoor"]
# Reference (mqraitem/From-Fake-to-Real, datasets/spuco_animals.py): landbirds ↔ land, waterbirds ↔ water,
# small_dogs ↔ indoor, big_dogs ↔ outdoor.
MAJORITY_BIAS = {0: 0, 1: 1, 2: 2, 3: 3}
REFERENCE_BASE_RATIO = None  # no base step in the reference
LAYOUT = {
    "spuco_birds": {"landbirds": ("land", "water"), "waterbirds": ("land", "water")},
    "spuco_dogs": {"small_dogs": ("indoor", "outdoor"), "big_dogs": ("indoor", "outdoor")},
}


def names(config) -> tuple[list[str], list[str]]:
    return CLASS_NAMES, BIAS_NAMES


def list_images(config, fs, root: str):
    ids, paths, y, b, split = [], [], [], [], []
    for family, classes in LAYOUT.items():
        for part in ("train", "val", "test"):
            for class_name, biases in classes.items():
                for bias_name in biases:
                    for path in list_files(fs, f"{root}/{family}/{part}/{class_name}/{bias_name}"):
                        ids.append(f"{NAME}-{family}-{part}-{class_name}-{bias_name}-{PurePosixPath(path).name}")
                        paths.append(path)
                        y.append(CLASS_NAMES.index(class_name))
                        b.append(BIAS_NAMES.index(bias_name))
                        split.append(part)
    return listing(ids, paths, y, b, split)
