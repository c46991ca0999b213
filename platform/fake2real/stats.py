"""Summaries over seeds: the 95 % Student-t confidence interval of a mean."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def interval(values, confidence: float = 0.95) -> Interval | None:
    """The mean and its interval over the finite values; a single value has none (low = high);
    None when there is no finite value."""
    values = finite(values)
    if not values:
        return None
    mean = float(np.mean(values))
    if len(values) == 1:
        return Interval(mean, mean, mean, 1)
    from scipy.stats import t

    half = float(t.ppf((1 + confidence) / 2, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return Interval(mean, mean - half, mean + half, len(values))


def separated(a: Interval, b: Interval) -> bool | None:
    """Whether two intervals do not overlap; None when either has a single value (no interval).
    Prose claims follow this: overlapping 95 % intervals are "not separated"."""
    if a.n < 2 or b.n < 2:
        return None
    return a.low > b.high or b.low > a.high
