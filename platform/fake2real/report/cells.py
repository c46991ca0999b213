"""A sweep's runs summarised per cell: the one data shape its tables and charts are drawn from.

A cell is (bias ratio, mixture, method); its runs are its seeds, within one point of the sweep's
axes (``by_point``). The runs may be the sweep's
in-memory ``ExperimentResult``s (results.md/png) or the HTML report's MLflow ``RunRecord``s: both
carry ``bias_ratio``, ``mixture``, ``method`` and ``metrics``, so both go through this module and
every table and chart shows the same interval, the 95 % Student-t confidence interval of the
mean over seeds (``fake2real.stats.interval``; one seed: its value, no interval).
"""

from __future__ import annotations

from fake2real.stats import Interval, interval

Cell = tuple[float | None, str, str]  # (bias ratio, mixture, method); ratio None: the data as distributed


Point = tuple[tuple[str, object], ...]  # a run's values of the sweep's axes, in axis order; () without axes


def cell_of(run) -> Cell:
    return (run.bias_ratio, run.mixture, run.method)


def by_point(runs) -> dict[Point, list]:
    """Runs per point of the sweep's axes, in first-seen order (one group, ``()``, without axes):
    a cell's seeds are the runs of one point, so every summary is taken within a group."""
    groups: dict[Point, list] = {}
    for run in runs:
        groups.setdefault(tuple(run.point.items()), []).append(run)
    return groups


def ratio_order(ratio: float | None) -> float:
    """Sort key of bias ratios: the data as distributed (None) first."""
    return -1.0 if ratio is None else ratio


def seed_counts(runs) -> dict[Cell, int]:
    """Runs per cell, cells ordered by bias ratio, then as first seen (the sweep's own order)."""
    counts: dict[Cell, int] = {}
    for run in runs:
        counts[cell_of(run)] = counts.get(cell_of(run), 0) + 1
    return {cell: counts[cell] for cell in sorted(counts, key=lambda c: ratio_order(c[0]))}  # stable: keeps first-seen order


def intervals(runs, metric: str) -> dict[Cell, Interval]:
    """Per cell (ordered as ``seed_counts``), the interval of ``metric`` over its seeds' finite
    values; cells without one (a method that never logs it, a probe that returned NaN) are left out."""
    values: dict[Cell, list] = {cell: [] for cell in seed_counts(runs)}
    for run in runs:
        values[cell_of(run)].append(run.metrics.get(metric))
    found = {cell: interval(cell_values) for cell, cell_values in values.items()}
    return {cell: value for cell, value in found.items() if value is not None}


def interval_text(found: Interval | None) -> str:
    """A table cell: ``mean ± half-width``; one seed: its value; no value: a dash."""
    if found is None:
        return "–"
    if found.n == 1:
        return f"{found.mean:.3f}"
    return f"{found.mean:.3f} ± {found.high - found.mean:.3f}"
