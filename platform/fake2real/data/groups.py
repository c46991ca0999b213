"""Groups and the paper's bias-ratio subsampling rule (DESIGN §2).

For each class, keep every majority-bias sample and a seeded random subset of the minority-bias
samples so that minority / (minority + majority) = 1 − r, rounded down. Validation keeps at
least ``floor`` samples per group; test is never subsampled.
"""

from __future__ import annotations

import numpy as np

from fake2real.errors import DataError


def group_index(y: np.ndarray, b: np.ndarray, num_biases: int) -> np.ndarray:
    """Index of the (y, b) group: ``y * num_biases + b``."""
    return np.asarray(y, dtype=np.int64) * num_biases + np.asarray(b, dtype=np.int64)


def minority_target(majority: int, bias_ratio: float) -> int:
    """Largest minority count whose share of the class does not exceed 1 − r."""
    if not 0.5 <= bias_ratio < 1.0:
        raise DataError(f"bias_ratio must be in [0.5, 1), got {bias_ratio}")
    # The small epsilon keeps exact ratios (e.g. 900 majority at r=0.9 → 100) from rounding down.
    return int(np.floor(majority * (1.0 - bias_ratio) / bias_ratio + 1e-9))


def subsample_mask(
    y: np.ndarray,
    b: np.ndarray,
    ids: np.ndarray,
    majority_bias: dict[int, int],
    bias_ratio: float,
    floor: int,
    seed: int,
) -> np.ndarray:
    """Boolean mask of the rows kept; deterministic in (ids, seed), independent of row order."""
    y, b, ids = np.asarray(y), np.asarray(b), np.asarray(ids)
    keep = np.zeros(len(y), dtype=bool)
    rng = np.random.default_rng(seed)
    for cls in sorted(majority_bias):
        in_class = y == cls
        majority = in_class & (b == majority_bias[cls])
        keep |= majority
        minority_rows = np.flatnonzero(in_class & ~majority)
        # Order by id so the choice depends on the data, not on how it was listed.
        minority_rows = minority_rows[np.argsort(ids[minority_rows], kind="stable")]
        target = min(minority_target(int(majority.sum()), bias_ratio), len(minority_rows))
        chosen = rng.permutation(len(minority_rows))[:target]
        keep[minority_rows[chosen]] = True
        for bias in sorted(set(b[minority_rows].tolist())):
            group_rows = minority_rows[b[minority_rows] == bias]
            missing = min(floor, len(group_rows)) - int(keep[group_rows].sum())
            if missing > 0:
                candidates = group_rows[~keep[group_rows]]
                keep[candidates[rng.permutation(len(candidates))[:missing]]] = True
    return keep


def check_no_empty_group(counts: dict[str, int], expected: list[str], where: str) -> None:
    """Every expected group must have at least one sample."""
    empty = [name for name in expected if counts.get(name, 0) == 0]
    if empty:
        raise DataError(f"{where}: group {empty[0]} is empty ({', '.join(f'{k}={v}' for k, v in counts.items())})")


def apply_bias_ratio(y, b, ids, split, majority_bias: dict[int, int], bias_ratio: float, val_floor: int, seed: int) -> np.ndarray:
    """Rows kept by the paper's rule: train without floor, val with ``val_floor``, test untouched."""
    from fake2real.seeding import stable_seed

    split = np.asarray(split)
    keep = np.ones(len(split), dtype=bool)
    for name, floor in (("train", 0), ("val", val_floor)):
        rows = split == name
        keep[rows] = subsample_mask(
            np.asarray(y)[rows], np.asarray(b)[rows], np.asarray(ids)[rows], majority_bias, bias_ratio, floor,
            seed=stable_seed(seed, name),
        )
    return keep


def check_splits(counts: dict[str, dict[str, int]], expected: list[str], dataset: str, bias_ratio: float | None) -> None:
    """No expected group may be empty in any split."""
    ratio = f" at bias_ratio={bias_ratio}" if bias_ratio is not None else ""
    for name in ("train", "val", "test"):
        check_no_empty_group(counts.get(name, {}), expected, f"{dataset} {name} split{ratio}")
