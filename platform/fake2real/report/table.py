"""The results table of a sweep: per (bias ratio, mixture, method), the mean over seeds ± the
half-width of its 95 % Student-t interval (``fake2real.stats``), the same interval as the HTML
report's figures.

Columns: test WGA and balanced accuracy on real data (the selection used validation WGA only),
validation WGA, WGA on the held-out synthetic test set, and the G-leakage probe's AUROC. Under
each ratio's table: whether the cell with the best mean test WGA is separated from the runner-up
(their intervals do not overlap) — prose claims follow that line.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from fake2real.stats import interval, separated

COLUMNS = (
    "test/worst_group_accuracy",
    "test/balanced_accuracy",
    "val/worst_group_accuracy",
    "synthetic_test/worst_group_accuracy",
    "probe/g_leakage_auroc",
)
HEADERS = ("test WGA", "test balanced acc", "val WGA", "synthetic-test WGA", "G-leakage AUROC")


def _summary(values: list[float]) -> str:
    found = interval(values)
    if found is None:
        return "–"
    if found.n == 1:
        return f"{found.mean:.3f}"
    return f"{found.mean:.3f} ± {found.high - found.mean:.3f}"


def separation(table: list[dict], metric: str = "test/worst_group_accuracy") -> str:
    """One line: the best cell by mean ``metric``, the runner-up, and whether their 95 %
    intervals are separated."""
    ranked = sorted(
        ((found, row) for row in table if (found := interval(row[metric])) is not None), key=lambda pair: -pair[0].mean
    )
    if len(ranked) < 2:
        return ""
    (best, first), (runner, second) = ranked[:2]
    verdict = separated(best, runner)
    if verdict is None:
        what = "not separated (one seed: no interval)"
    else:
        what = "separated (95 % intervals do not overlap)" if verdict else "not separated (95 % intervals overlap)"
    return (
        f"Best test WGA: {first['mixture']}/{first['method']} {best.mean:.3f}; runner-up "
        f"{second['mixture']}/{second['method']} {runner.mean:.3f}: **{what}**."
    )


def rows(results) -> list[dict]:
    cells: dict[tuple, list] = {}
    for result in results:
        cells.setdefault((result.bias_ratio, result.mixture, result.method), []).append(result)
    out = []
    for (ratio, mixture, method), group in cells.items():
        row = {"bias_ratio": ratio, "mixture": mixture, "method": method, "seeds": len(group)}
        for column in COLUMNS:
            row[column] = [r.metrics.get(column) for r in group]
        out.append(row)
    return out


def markdown(results, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "WGA = worst-group accuracy; balanced = unweighted mean of group accuracies; mean ± 95 % CI half-width over seeds (Student t);",
        "G-leakage AUROC = linear probe real vs synthetic on the selected model's features (0.5: no trace of G).",
    ]
    table = rows(results)
    for ratio in dict.fromkeys(r["bias_ratio"] for r in table):
        lines += [
            "",
            f"### bias ratio {ratio}",
            "",
            "| mixture | method | seeds | " + " | ".join(HEADERS) + " |",
            "|---|---|---|" + "---|" * len(HEADERS),
        ]
        at_ratio = [r for r in table if r["bias_ratio"] == ratio]
        for row in at_ratio:
            cells = [_summary(row[c]) for c in COLUMNS]
            lines.append(f"| {row['mixture']} | {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
        verdict = separation(at_ratio)
        if verdict:
            lines += ["", verdict]
    refit = sorted({r["method"] for r in table if _refits_on_validation(r["method"])})
    if refit:
        lines += ["", f"{', '.join(refit)}: val WGA is measured on the validation data its head was refit on (optimistic); compare by test WGA."]
    return "\n".join(lines) + "\n"


def _refits_on_validation(method: str) -> bool:
    from fake2real.train.methods import METHODS

    return method in METHODS and METHODS[method].base_method is not None


def write_csv(results, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["bias_ratio", "mixture", "method", "seed", "run_id", *COLUMNS])
        for r in results:
            writer.writerow([r.bias_ratio, r.mixture, r.method, r.seed, r.run_id, *(r.metrics.get(c, "") for c in COLUMNS)])


def _bars(ax, table: list[dict]) -> None:
    for i, row in enumerate(table):
        for offset, column, colour, label in (
            (-0.18, "test/worst_group_accuracy", "#c0392b", "test WGA"),
            (0.18, "test/balanced_accuracy", "#2c7fb8", "test balanced acc"),
        ):
            values = row[column]
            ax.bar(i + offset, statistics.mean(values), width=0.34, color=colour, alpha=0.75, label=label if i == 0 else None)
            ax.scatter([i + offset] * len(values), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(table)), [f"{r['mixture']}\n{r['method']}" for r in table])
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right", fontsize=8)


def _mean_interval_of(row: dict, column: str) -> tuple[float, float, float]:
    found = interval(row[column])
    return found.mean, found.low, found.high


def _lines(fig, table: list[dict]) -> None:
    """The paper's Fig. 3: test WGA against bias ratio, a panel per mixture, a line per method
    (the 95 % interval over seeds shaded)."""
    mixtures = list(dict.fromkeys(r["mixture"] for r in table))
    methods = list(dict.fromkeys(r["method"] for r in table))
    colours = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    ratios = sorted({r["bias_ratio"] for r in table})
    columns = min(4, len(mixtures))
    axes = fig.subplots(-(-len(mixtures) // columns), columns, sharey=True, squeeze=False).flatten()
    for ax, mixture in zip(axes, mixtures):
        for method in methods:
            points = {r["bias_ratio"]: r for r in table if (r["mixture"], r["method"]) == (mixture, method)}
            if not points:
                continue
            x = [ratios.index(ratio) for ratio in sorted(points)]
            stats = [_mean_interval_of(points[ratio], "test/worst_group_accuracy") for ratio in sorted(points)]
            means = [m for m, _, _ in stats]
            ax.plot(x, means, marker="o", color=colours[method], label=method)
            ax.fill_between(x, [low for _, low, _ in stats], [high for _, _, high in stats], color=colours[method], alpha=0.15)
        ax.set_title(mixture, fontsize=10)
        ax.set_xticks(range(len(ratios)), [str(r) for r in ratios])
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[len(mixtures):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("test worst-group acc.")
    handles = [plt_line for plt_line in axes[0].get_legend_handles_labels()[0]]
    labels = axes[0].get_legend_handles_labels()[1]
    for ax in axes[1 : len(mixtures)]:  # methods that only some panels have
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.supxlabel("bias ratio", fontsize=9, y=0.06)


def chart(results, path: Path, title: str) -> None:
    """Bars per cell for one bias ratio; WGA-vs-bias-ratio panels when the sweep has several."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(results)
    if len({r["bias_ratio"] for r in table}) > 1:
        panels = len({r["mixture"] for r in table})
        fig = plt.figure(figsize=(3.2 * min(4, panels), 2.8 * -(-panels // 4) + 0.9))
        _lines(fig, table)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig, ax = plt.subplots(figsize=(1.6 * len(table) + 2, 3.6))
        _bars(ax, table)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
