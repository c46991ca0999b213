"""UTK-Face: one folder of ``{age}_{gender}_{race}_{date}.jpg`` (aligned ``.chip.jpg`` too).

Class: gender (0 male, 1 female). Bias: age with the paper's bins — young (≤ 5) and old (20–50);
other ages are dropped. No official split: a seeded, stable 80/10/10 split by file name. A file
name that does not parse, or a gender other than 0 or 1, is an error naming the file.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from fake2real.data.datasets.base import NativeDataset
from fake2real.data.datasets._common import check_value, list_files, listing, seeded_split
from fake2real.errors import DataError

NAME = "utkface"


def age_bin(age: int) -> int | None:
    if age <= 5:
        return 0
    if 20 <= age <= 50:
        return 1
    return None


def parse_name(path: str) -> tuple[int, int]:
    """(age, gender) of ``{age}_{gender}_{race}_{date}.jpg``; race and date are not read (a few
    distributed files lack the race). A name that does not parse is refused, never skipped."""
    parts = PurePosixPath(path).name.split("_")
    if len(parts) < 3 or not (parts[0].isascii() and parts[0].isdigit()):
        raise DataError(f"{path}: not a UTK-Face file name (age_gender_race_date.jpg)")
    return int(parts[0]), int(check_value(parts[1], ("0", "1"), "gender", path))


class UTKFace(NativeDataset):
    name = NAME
    # Reference (mqraitem/From-Fake-to-Real, datasets/utk_face.py): Male (0) ↔ young (0), Female (1) ↔ old (1).
    MAJORITY_BIAS = {0: 0, 1: 1}
    # Reference: train and valid are first cut to bias ratio 0.9 (rounded down), then to the chosen ratio.
    REFERENCE_BASE_RATIO = 0.9

    @classmethod
    def names(cls, config) -> tuple[list[str], list[str]]:
        return ["male", "female"], ["young", "old"]

    @classmethod
    def list_images(cls, config, fs, root: str):
        ids, paths, y, b = [], [], [], []
        for path in list_files(fs, root):
            age, gender = parse_name(path)
            bias = age_bin(age)
            if bias is None:
                continue
            ids.append(f"{NAME}-{PurePosixPath(path).name}")
            paths.append(path)
            y.append(gender)
            b.append(bias)
        return listing(ids, paths, y, b, seeded_split(ids, config.split_seed))
