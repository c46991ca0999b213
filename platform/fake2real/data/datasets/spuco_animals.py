"""SpuCo Animals: ``spuco_birds/{split}/{landbirds,waterbirds}/{land,water}/`` and
``spuco_dogs/{split}/{small_dogs,big_dogs}/{indoor,outdoor}/``: 4 classes, 4 bias values, 8 groups.

The labels are the folder names: another folder (or an image) beside the class or bias folders is
an error, since its images would silently not be listed. Hidden entries (``.…``) are ignored.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pyarrow.fs as pafs

from fake2real.data.datasets.base import NativeDataset
from fake2real.data.datasets._common import IMAGE_SUFFIXES, list_files, listing
from fake2real.errors import DataError

NAME = "spuco_animals"
CLASS_NAMES = ["landbirds", "waterbirds", "small_dogs", "big_dogs"]
BIAS_NAMES = ["land", "water", "indoor", "outdoor"]
LAYOUT = {
    "spuco_birds": {"landbirds": ("land", "water"), "waterbirds": ("land", "water")},
    "spuco_dogs": {"small_dogs": ("indoor", "outdoor"), "big_dogs": ("indoor", "outdoor")},
}


def check_label_folders(fs, folder: str, expected, kind: str) -> None:
    """Only the ``expected`` label folders under ``folder`` (a missing one is reported when listed)."""
    for entry in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True, recursive=False)):
        name = PurePosixPath(entry.path).name
        if name.startswith(".") or name in expected:
            continue
        if entry.type == pafs.FileType.Directory:
            raise DataError(f"{folder}: unexpected folder '{name}' (the {kind} folders are {', '.join(expected)})")
        if name.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{folder}: image '{name}' outside the {kind} folders ({', '.join(expected)})")


class SpucoAnimals(NativeDataset):
    name = NAME
    # Reference (mqraitem/From-Fake-to-Real, datasets/spuco_animals.py): landbirds ↔ land, waterbirds ↔ water,
    # small_dogs ↔ indoor, big_dogs ↔ outdoor. No base step in the reference.
    MAJORITY_BIAS = {0: 0, 1: 1, 2: 2, 3: 3}

    @classmethod
    def names(cls, config) -> tuple[list[str], list[str]]:
        return CLASS_NAMES, BIAS_NAMES

    @classmethod
    def list_images(cls, config, fs, root: str):
        ids, paths, y, b, split = [], [], [], [], []
        for family, classes in LAYOUT.items():
            for part in ("train", "val", "test"):
                check_label_folders(fs, f"{root}/{family}/{part}", tuple(classes), "class")
                for class_name, biases in classes.items():
                    check_label_folders(fs, f"{root}/{family}/{part}/{class_name}", biases, "bias")
                    for bias_name in biases:
                        for path in list_files(fs, f"{root}/{family}/{part}/{class_name}/{bias_name}"):
                            ids.append(f"{NAME}-{family}-{part}-{class_name}-{bias_name}-{PurePosixPath(path).name}")
                            paths.append(path)
                            y.append(CLASS_NAMES.index(class_name))
                            b.append(BIAS_NAMES.index(bias_name))
                            split.append(part)
        return listing(ids, paths, y, b, split)
