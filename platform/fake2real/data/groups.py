"""Groups and the reference's bias-ratio subsampling rule (docs/protocol.md, "Data").

Every class has one *majority* bias, set per dataset (``MAJORITY_BIAS`` in its module, or
``dataset.majority_bias``; see ``ingest.majority_map``). Majority groups are kept whole; each
minority group (y, b ≠ majority) keeps a seeded random subset of ``kept_minority`` rows, computed
with the float operations of the reference (mqraitem/From-Fake-to-Real,
``MainDataset.make_harder``)::

    ratio = 1 - r;  target = majority * ratio / (1 - ratio)
    if target > minority: keep all
    target = max(target, floor)                  # floor: validation only (``val_floor``)
    keep minority - int(minority - target)       # the ceiling of the target, never more than exist

Train has no floor, validation has ``val_floor``, test is never subsampled. Datasets whose module
sets ``REFERENCE_BASE_RATIO`` (CelebA, CelebA-HQ, UTK-Face) first get the reference's base step on
train and validation: the same target at that ratio, rounded *down* (``int(target)``), without a
floor; the rule above then runs on what is left. The kept rows depend on (ids, seed) only, never on
the order of the listing.
"""

from __future__ import annotations

import numpy as np

from fake2real.errors import DataError


def group_index(y: np.ndarray, b: np.ndarray, num_biases: int) -> np.ndarray:
    """Index of the (y, b) group: ``y * num_biases + b``."""
    return np.asarray(y, dtype=np.int64) * num_biases + np.asarray(b, dtype=np.int64)


def _target(majority: int, bias_ratio: float) -> float:
    # Exactly the reference's expression and float rounding (``ratio = 1 - r`` first).
    ratio = 1 - bias_ratio
    return (majority * ratio) / (1 - ratio)


def kept_minority(majority: int, minority: int, bias_ratio: float, floor: int = 0, base_ratio: float | None = None) -> int:
    """How many of a class's ``minority`` rows of one minority bias the reference keeps."""
    if not 0.5 <= bias_ratio < 1.0:
        raise DataError(f"bias_ratio must be in [0.5, 1), got {bias_ratio}")
    if base_ratio is not None:
        # Reference base step (celeba.py / utk_face.py): int() rounds the target down; no floor.
        minority = min(minority, int(_target(majority, base_ratio)))
    target = _target(majority, bias_ratio)
    if target > minority:
        return minority
    target = max(target, floor)
    return minority - max(0, int(minority - target))


def subsample_mask(
    y: np.ndarray,
    b: np.ndarray,
    ids: np.ndarray,
    majority_bias: dict[int, int],
    bias_ratio: float,
    floor: int,
    seed: int,
    base_ratio: float | None = None,
) -> np.ndarray:
    """Boolean mask of the rows kept; deterministic in (ids, seed), independent of row order."""
    y, b, ids = np.asarray(y), np.asarray(b), np.asarray(ids)
    unmapped = sorted(set(y.tolist()) - set(majority_bias))
    if unmapped:
        raise DataError(f"class {unmapped[0]} has no majority bias (majority map: {majority_bias})")
    keep = np.zeros(len(y), dtype=bool)
    rng = np.random.default_rng(seed)
    for cls in sorted(majority_bias):
        in_class = y == cls
        majority = in_class & (b == majority_bias[cls])
        keep |= majority
        n_majority = int(majority.sum())
        for bias in sorted(set(b[in_class & ~majority].tolist())):
            rows = np.flatnonzero(in_class & (b == bias))
            # Order by id so the choice depends on the data, not on how it was listed; one
            # permutation per group whatever the count, so a higher ratio keeps a subset.
            rows = rows[np.argsort(ids[rows], kind="stable")]
            count = kept_minority(n_majority, len(rows), bias_ratio, floor, base_ratio)
            keep[rows[rng.permutation(len(rows))[:count]]] = True
    return keep


def check_no_empty_group(counts: dict[str, int], expected: list[str], where: str) -> None:
    """Every expected group must have at least one sample."""
    empty = [name for name in expected if counts.get(name, 0) == 0]
    if empty:
        raise DataError(f"{where}: group {empty[0]} is empty ({', '.join(f'{k}={v}' for k, v in counts.items())})")


def apply_bias_ratio(
    y, b, ids, split, majority_bias: dict[int, int], bias_ratio: float, val_floor: int, seed: int,
    base_ratio: float | None = None,
) -> np.ndarray:
    """Rows kept by the reference's rule: train without floor, val with ``val_floor``, test untouched."""
    from fake2real.seeding import stable_seed

    split = np.asarray(split)
    keep = np.ones(len(split), dtype=bool)
    for name, floor in (("train", 0), ("val", val_floor)):
        rows = split == name
        keep[rows] = subsample_mask(
            np.asarray(y)[rows], np.asarray(b)[rows], np.asarray(ids)[rows], majority_bias, bias_ratio, floor,
            seed=stable_seed(seed, name), base_ratio=base_ratio,
        )
    return keep


def check_splits(counts: dict[str, dict[str, int]], expected: list[str], dataset: str, bias_ratio: float | None) -> None:
    """No expected group may be empty in any split."""
    ratio = f" at bias_ratio={bias_ratio}" if bias_ratio is not None else ""
    for name in ("train", "val", "test"):
        check_no_empty_group(counts.get(name, {}), expected, f"{dataset} {name} split{ratio}")
