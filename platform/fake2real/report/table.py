"""A sweep's results.md, results.csv and results.png, from its in-memory results.

Per (bias ratio, mixture, method), the mean over seeds ± the half-width of its 95 % Student-t
confidence interval, taken from ``report/cells.py`` as the HTML report takes it, so the
markdown table, the chart and the report agree. The csv lists every run (one row per seed, no
summary): the report reads its run ids back, and any interval is derived from it the same way.

Columns: test WGA and balanced accuracy on real data (the selection used validation WGA only),
validation WGA, WGA on the held-out synthetic test set, and the G-leakage probe's AUROC. Under
each ratio's table: whether the cell with the best mean test WGA is separated from the runner-up
(their intervals do not overlap) — prose claims follow that line.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fake2real.config import point_label
from fake2real.report import figures, regime
from fake2real.report.cells import Cell, by_point, cell_of, interval_text, intervals, seed_counts
from fake2real.track.names import TEST_WGA, VAL_WGA
from fake2real.stats import Interval, finite, separated

COLUMNS = (
    TEST_WGA,
    "test/balanced_accuracy",
    VAL_WGA,
    "synthetic_test/worst_group_accuracy",
    "probe/g_leakage_auroc",
)
HEADERS = ("test WGA", "test balanced acc", "val WGA", "synthetic-test WGA", "G-leakage AUROC")


def separation(wga: dict[Cell, Interval]) -> str:
    """One line on the cells of one ratio: the best by mean test WGA, the runner-up, and whether
    their 95 % intervals are separated."""
    ranked = sorted(wga.items(), key=lambda item: -item[1].mean)  # stable: ties keep table order
    if len(ranked) < 2:
        return ""
    ((_, mixture, method), best), ((_, runner_mixture, runner_method), runner) = ranked[:2]
    verdict = separated(best, runner)
    if verdict is None:
        what = "not separated (one seed: no interval)"
    else:
        what = "separated (95 % intervals do not overlap)" if verdict else "not separated (95 % intervals overlap)"
    return (
        f"Best test WGA: {mixture}/{method} {best.mean:.3f}; runner-up "
        f"{runner_mixture}/{runner_method} {runner.mean:.3f}: **{what}**."
    )


def _ratio_section(ratio, seeds: dict[Cell, int], by_column: dict[str, dict[Cell, Interval]], point: str = "") -> list[str]:
    lines = [
        "",
        f"### {point + ', ' if point else ''}bias ratio {ratio}",
        "",
        "| mixture | method | seeds | " + " | ".join(HEADERS) + " |",
        "|---|---|---|" + "---|" * len(HEADERS),
    ]
    at_ratio = [cell for cell in seeds if cell[0] == ratio]
    for cell in at_ratio:
        texts = [interval_text(by_column[column].get(cell)) for column in COLUMNS]
        lines.append(f"| {cell[1]} | {cell[2]} | {seeds[cell]} | " + " | ".join(texts) + " |")
    wga = {cell: by_column[TEST_WGA][cell] for cell in at_ratio if cell in by_column[TEST_WGA]}
    verdict = separation(wga)
    against = against_real_only(wga)
    return lines + (["", verdict] if verdict else []) + (["", against] if against else [])


def against_real_only(wga: dict[Cell, Interval]) -> str:
    """One line: each mixture's test WGA against ``none`` (real data only) with the same method,
    above / below where the 95 % intervals do not overlap, else not separated."""
    parts = []
    for (ratio, mixture, method), found in wga.items():
        baseline = wga.get((ratio, "none", method))
        if mixture == "none" or baseline is None:
            continue
        verdict = separated(found, baseline)
        if verdict is None:
            word = "one seed, no interval"
        else:
            word = ("separated above" if found.mean > baseline.mean else "separated below") if verdict else "not separated"
        parts.append(f"{mixture}/{method} {word}")
    return f"Against none (real data only), same method: {'; '.join(parts)}." if parts else ""


def markdown(results, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "WGA = worst-group accuracy; balanced = unweighted mean of group accuracies; mean ± 95 % CI half-width over seeds (Student t);",
        "G-leakage AUROC = linear probe real vs synthetic on the selected model's features (0.5: no trace of G).",
    ]
    for point, runs in by_point(results).items():
        seeds = seed_counts(runs)
        by_column = {column: intervals(runs, column) for column in COLUMNS}
        for ratio in dict.fromkeys(ratio for ratio, _, _ in seeds):
            lines += _ratio_section(ratio, seeds, by_column, point_label(dict(point)))
    lines += regime.markdown(results)
    refit = sorted({r.method for r in results if _refits_on_validation(r.method)})
    if refit:
        lines += ["", f"{', '.join(refit)}: val WGA is measured on the validation data its head was refit on (optimistic); compare by test WGA."]
    return "\n".join(lines) + "\n"


def _refits_on_validation(method: str) -> bool:
    from fake2real.train.methods import METHODS

    return method in METHODS and METHODS[method].base_method is not None


def write_csv(results, path: Path) -> None:
    axes = list(dict.fromkeys(key for r in results for key in r.point))  # a column per axis, by its config key
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["bias_ratio", *axes, "mixture", "method", "seed", "run_id", *COLUMNS])
        for r in results:
            writer.writerow([r.bias_ratio, *(r.point.get(a, "") for a in axes), r.mixture, r.method, r.seed, r.run_id,
                             *(r.metrics.get(c, "") for c in COLUMNS)])


def _bars(results, title: str, ax=None):
    """Per cell, test WGA and balanced accuracy as mean bars with their 95 % intervals, each
    seed's value a dot (a cell's ratio in its label when the runs hold several)."""
    plt = figures.pyplot()
    cells = list(seed_counts(results))
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 * len(cells) + 2, 3.6))
    for offset, column, colour, label in (
        (-0.18, TEST_WGA, "#c0392b", "test WGA"),
        (0.18, "test/balanced_accuracy", "#2c7fb8", "test balanced acc"),
    ):
        found = intervals(results, column)
        shown = [cell for cell in cells if cell in found]
        x = [cells.index(cell) + offset for cell in shown]
        means = [found[cell].mean for cell in shown]
        ax.bar(x, means, width=0.34, yerr=figures.error_bars([found[c] for c in shown]), capsize=3, error_kw={"ecolor": "#555", "lw": 1},
               color=colour, alpha=0.75, label=label)
        for i, cell in enumerate(cells):
            values = finite(r.metrics.get(column) for r in results if cell_of(r) == cell)
            ax.scatter([i + offset] * len(values), values, color="black", s=10, zorder=3)
    several = len({ratio for ratio, _, _ in cells}) > 1
    ax.set_xticks(range(len(cells)), [f"{mixture}\n{method}" + (f"\nr={ratio}" if several else "") for ratio, mixture, method in cells])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    if fig is not None:
        fig.tight_layout()
    return fig


def cell_bars(results, title: str):
    """A sweep with axes: ``_bars`` at every point, a panel each (what the regime map's
    differences are made of: each cell's test WGA, its interval and its seeds)."""
    plt = figures.pyplot()
    groups = by_point(results)
    width = 1.6 * max(len(seed_counts(runs)) for runs in groups.values()) + 2
    fig, axes = plt.subplots(len(groups), 1, figsize=(width, 3.4 * len(groups) + 0.4), squeeze=False)
    for ax, (point, runs) in zip(axes[:, 0], groups.items()):
        _bars(runs, point_label(dict(point)), ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def chart(results, path: Path, title: str) -> None:
    """The regime map when the sweep has axes and the mixtures it compares; else, at the first
    point of its axes (every point is in results.md), WGA-vs-bias-ratio panels (the report's
    Figure 3) when the sweep has several ratios, bars per cell for one."""
    fig = regime.draw(results, title)
    if fig is None:
        groups = by_point(results)
        point, runs = next(iter(groups.items()))
        if len(groups) > 1:
            title += f" (at {point_label(dict(point))}; results.md has every point)"
        if len({r.bias_ratio for r in runs}) > 1:
            fig = figures.draw_wga_vs_bias_ratio(intervals(runs, TEST_WGA), title)
        else:
            fig = _bars(runs, title)
    path.write_bytes(figures.to_png(fig))


def write_charts(results, folder: Path, title: str) -> list[str]:
    """``results.png`` (``chart``) and, for a sweep with axes, ``results-cells.png`` (``cell_bars``)
    in ``folder``; returns the names written."""
    chart(results, folder / "results.png", title)
    if not any(r.point for r in results):
        return ["results.png"]
    (folder / "results-cells.png").write_bytes(figures.to_png(cell_bars(results, title)))
    return ["results.png", "results-cells.png"]
