"""The report's figures, each rendered to PNG bytes from a sweep's run records, and the
WGA-against-bias-ratio chart that the sweep's results.png draws too.

Intervals are 95 % Student-t confidence intervals of the mean over seeds, per cell
(``report/cells.py``; a single seed has none: its point is drawn alone).
"""

from __future__ import annotations

import io
import re

import numpy as np

from fake2real.report.cells import Cell, intervals, ratio_order
from fake2real.report.runs import RunRecord
from fake2real.stats import Interval
from fake2real.track.names import TEST_WGA

LEAKAGE = "probe/g_leakage_auroc"
_GROUP_METRIC = re.compile(r"^test/group/(y\d+_b\d+)/accuracy$")


def group_names(records: list[RunRecord]) -> list[str]:
    return sorted({m.group(1) for r in records for key in r.metrics if (m := _GROUP_METRIC.match(key))})


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> bytes:
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _order(records: list[RunRecord]) -> tuple[list[float], list[str], list[str]]:
    ratios = sorted({r.bias_ratio for r in records}, key=ratio_order)
    mixtures = list(dict.fromkeys(r.mixture for r in records))
    methods = list(dict.fromkeys(r.method for r in records))
    return ratios, mixtures, methods


def error_bars(found: list[Interval]) -> np.ndarray:
    """Matplotlib's ``yerr`` (distances below and above each mean) of intervals."""
    return np.array([[i.mean - i.low for i in found], [i.high - i.mean for i in found]]).reshape(2, len(found))


def _panel_grid(plt, panels: int, title: str | None):
    columns = min(4, panels)
    rows = -(-panels // columns)
    height = 2.9 * rows + 0.6 + (0.3 if title else 0)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, height), sharey=True, squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("test worst-group acc.")
    return fig, axes


def draw_wga_vs_bias_ratio(wga: dict[Cell, Interval], title: str | None = None):
    """The paper's Figure 3: test WGA against bias ratio, a panel per mixture, a line per method,
    bars the 95 % interval over seeds. The one drawing of this chart: the sweep's results.png and
    the HTML report both pass their runs' ``cells.intervals(runs, WGA)``. Returns the figure."""
    plt = pyplot()
    ratios = sorted({ratio for ratio, _, _ in wga}, key=ratio_order)
    mixtures = list(dict.fromkeys(mixture for _, mixture, _ in wga))
    methods = list(dict.fromkeys(method for _, _, method in wga))
    fig, axes = _panel_grid(plt, len(mixtures), title)
    for ax, mixture in zip(axes.flat, mixtures):
        for index, method in enumerate(methods):
            points = [(ratios.index(r), wga[(r, mixture, method)]) for r in ratios if (r, mixture, method) in wga]
            if not points:
                continue
            x = np.array([p for p, _ in points]) + (index - (len(methods) - 1) / 2) * 0.04  # dodge overlapping bars
            found = [i for _, i in points]
            ax.errorbar(x, [i.mean for i in found], yerr=error_bars(found), marker="o", capsize=3, color=f"C{index % 10}", label=method)
        ax.set_title(mixture, fontsize=10)
        ax.set_xticks(range(len(ratios)), [str(r) for r in ratios])
        ax.set_xlim(-0.5, len(ratios) - 0.5)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    handles = {label: handle for ax in axes.flat for handle, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    inch = 1 / fig.get_figheight()  # the legend, then the axis label, at fixed heights whatever the rows
    fig.supxlabel("bias ratio r", fontsize=9, y=0.3 * inch, va="bottom")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.3 * inch, 1, 1))
    return fig


def wga_vs_bias_ratio(records: list[RunRecord]) -> bytes:
    """The paper's Figure 3 from the report's run records."""
    return to_png(draw_wga_vs_bias_ratio(intervals(records, TEST_WGA)))


def group_heatmaps(records: list[RunRecord], labels: dict[str, str] | None = None) -> bytes:
    """Mean test accuracy of every (Y, B) group, a panel per bias ratio, a row per mixture/method."""
    plt = pyplot()
    ratios, mixtures, methods = _order(records)
    groups = group_names(records)
    pairs = [(m, k) for m in mixtures for k in methods if any((r.mixture, r.method) == (m, k) for r in records)]
    fig, axes = plt.subplots(1, len(ratios), figsize=(1.0 * len(groups) * len(ratios) + 2.5, 0.38 * len(pairs) + 1.6), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        values = np.full((len(pairs), len(groups)), np.nan)
        for row, (mixture, method) in enumerate(pairs):
            for column, group in enumerate(groups):
                found = [r.metrics[f"test/group/{group}/accuracy"] for r in records
                         if r.cell == (ratio, mixture, method) and f"test/group/{group}/accuracy" in r.metrics]
                if found:
                    values[row, column] = float(np.mean(found))
        image = ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for (row, column), value in np.ndenumerate(values):
            if not np.isnan(value):
                ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(groups)), [(labels or {}).get(g, g) for g in groups], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(pairs)), [f"{m} / {k}" for m, k in pairs], fontsize=7)
        ax.set_title(f"r = {ratio}", fontsize=9)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="test accuracy")
    return to_png(fig)


def g_leakage(records: list[RunRecord]) -> bytes:
    """G-leakage AUROC per mixture/method and bias ratio: 0.5 = features carry no trace of G."""
    plt = pyplot()
    ratios, mixtures, methods = _order(records)
    cells = intervals(records, LEAKAGE)
    pairs = [(m, k) for m in mixtures for k in methods if any((r, m, k) in cells for r in ratios)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.55 * len(pairs) * len(ratios) + 1.5), 3.4))
    width = 0.8 / max(1, len(ratios))
    for index, ratio in enumerate(ratios):
        shown = [(position, cells[(ratio, m, k)]) for position, (m, k) in enumerate(pairs) if (ratio, m, k) in cells]
        x = [position + (index - (len(ratios) - 1) / 2) * width for position, _ in shown]
        found = [i for _, i in shown]
        ax.bar(x, [i.mean for i in found], width=width * 0.95, yerr=error_bars(found), capsize=2, color=f"C{index % 10}", alpha=0.8, label=f"r = {ratio}")
    ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="chance (no trace of G)")
    ax.set_xticks(range(len(pairs)), [f"{m}\n{k}" for m, k in pairs], fontsize=7)
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("G-leakage AUROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return to_png(fig)


def image_grid(rows: dict[str, list[np.ndarray]], title: str, captions: dict[str, str] | None = None) -> bytes:
    """A row of images per group (``rows``: group name → HWC uint8 images)."""
    plt = pyplot()
    columns = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.3 * columns + 1.2, 1.35 * len(rows) + 0.4), squeeze=False)
    for ax_row, (group, images) in zip(axes, rows.items()):
        for ax, image in zip(ax_row, images + [None] * (columns - len(images))):
            ax.axis("off")
            if image is not None:
                ax.imshow(image)
        ax_row[0].text(-0.1, 0.5, (captions or {}).get(group, group), transform=ax_row[0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return to_png(fig)
