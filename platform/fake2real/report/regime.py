"""The regime map of a sweep with axes: where does FFR win?

For each comparison (FFR − ASB, FFR − USB), method and bias ratio, the difference of mean test
WGA over seeds at every point of the sweep's axes, drawn as a heatmap (rows: the points of every
axis but the last; columns: the last axis's values). A cell is marked where the two mixtures' 95 %
intervals do not overlap (``stats.separated``); unmarked differences are "not separated". The
sweep's results.md/png and the HTML report both draw it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from fake2real.config import axis_name, point_label
from fake2real.report.cells import by_point, intervals, ratio_order
from fake2real.stats import separated
from fake2real.track.names import TEST_WGA

COMPARISONS = (("ffr", "asb"), ("ffr", "usb"))
MARK = "*"  # after a difference whose two intervals do not overlap


@dataclass(frozen=True)
class Difference:
    value: float  # mean test WGA of the first mixture minus the second's
    separated: bool | None  # None: a mixture has one seed here (no interval)


@dataclass
class Panel:
    """One heatmap: ``first − second`` for ``method`` at ``ratio``, a value per point."""

    first: str
    second: str
    method: str
    ratio: float | None
    rows: list[dict]  # the points of every axis but the last ({} with one axis)
    columns: list  # the last axis's values
    last_axis: str
    cells: dict[tuple[int, int], Difference]

    @property
    def title(self) -> str:
        return f"{self.first} − {self.second}, {self.method}, r = {self.ratio}"


def _key(point: dict) -> str:
    return json.dumps(point, sort_keys=True)


def panels(runs) -> list[Panel]:
    """Every comparison whose two mixtures ran, per method and ratio; [] without axes."""
    grouped = by_point(runs)
    points = [dict(p) for p in grouped if p]
    if not points:
        return []
    axes = list(points[0])
    last = axes[-1]
    rows = list({_key({k: p[k] for k in axes[:-1]}): {k: p[k] for k in axes[:-1]} for p in points}.values())
    columns = list(dict.fromkeys(p[last] for p in points))
    wga = {point: intervals(found, TEST_WGA) for point, found in grouped.items()}
    found: list[Panel] = []
    ratios = sorted({r.bias_ratio for r in runs}, key=ratio_order)
    methods = list(dict.fromkeys(r.method for r in runs))
    for first, second in COMPARISONS:
        for method in methods:
            for ratio in ratios:
                cells = {}
                for point, at_point in wga.items():
                    a, b = at_point.get((ratio, first, method)), at_point.get((ratio, second, method))
                    if a is None or b is None:
                        continue
                    point = dict(point)
                    row = rows.index({k: point[k] for k in axes[:-1]})
                    cells[(row, columns.index(point[last]))] = Difference(a.mean - b.mean, separated(a, b))
                if cells:
                    found.append(Panel(first, second, method, ratio, rows, columns, last, cells))
    return found


def _text(difference: Difference | None) -> str:
    if difference is None:
        return "–"
    return f"{difference.value:+.3f}{MARK if difference.separated else ''}"


def _axes_of(row: dict) -> str:
    return ", ".join(axis_name(key) for key in row)


def markdown(runs) -> list[str]:
    """The regime tables for results.md ([] without axes)."""
    found = panels(runs)
    if not found:
        return []
    lines = ["", "### Regime map: where FFR wins", "",
             f"Difference of mean test WGA over seeds; {MARK}: the two mixtures' 95 % intervals do not overlap "
             "(separated); no mark: not separated."]
    for panel in found:
        rows_name = _axes_of(panel.rows[0])
        head = f"{rows_name} \\ {axis_name(panel.last_axis)}" if rows_name else axis_name(panel.last_axis)
        lines += ["", f"#### {panel.title}", "", f"| {head} | " + " | ".join(map(str, panel.columns)) + " |",
                  "|---|" + "---|" * len(panel.columns)]
        for index, row in enumerate(panel.rows):
            texts = [_text(panel.cells.get((index, column))) for column in range(len(panel.columns))]
            lines.append(f"| {point_label(row) or '—'} | " + " | ".join(texts) + " |")
        wins = sum(1 for d in panel.cells.values() if d.separated and d.value > 0)
        losses = sum(1 for d in panel.cells.values() if d.separated and d.value < 0)
        lines += ["", f"{panel.first} separated above {panel.second} at {wins} of {len(panel.cells)} points, below at {losses}."]
    return lines


def draw(runs, title: str | None = None):
    """The heatmaps, one panel per comparison × method × ratio; None without axes."""
    from fake2real.report.figures import pyplot

    found = panels(runs)
    if not found:
        return None
    plt = pyplot()
    columns = min(4, len(found))
    rows = -(-len(found) // columns)
    width = max(3.2, 0.9 * len(found[0].columns) + 1.8)
    height = max(2.4, 0.55 * len(found[0].rows) + 1.6)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows + 0.5), squeeze=False, layout="constrained")
    for ax in axes.flat[len(found):]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, found):
        values = np.full((len(panel.rows), len(panel.columns)), np.nan)
        for (row, column), difference in panel.cells.items():
            values[row, column] = difference.value
        image = ax.imshow(values, vmin=-1, vmax=1, cmap="RdBu", aspect="auto")
        for (row, column), difference in panel.cells.items():
            ax.text(column, row, _text(difference), ha="center", va="center", fontsize=8,
                    fontweight="bold" if difference.separated else "normal")
        ax.set_xticks(range(len(panel.columns)), [str(c) for c in panel.columns], fontsize=8)
        ax.set_yticks(range(len(panel.rows)), [", ".join(map(str, r.values())) for r in panel.rows], fontsize=8)
        ax.set_ylabel(_axes_of(panel.rows[0]), fontsize=8)
        ax.set_xlabel(axis_name(panel.last_axis), fontsize=8)
        ax.set_title(panel.title, fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label=f"test WGA difference ({MARK}: separated)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
