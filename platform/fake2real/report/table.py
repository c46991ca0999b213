"""The results table of a sweep: test WGA and balanced accuracy per (mixture, method)."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

COLUMNS = ("test/worst_group_accuracy", "test/balanced_accuracy", "val/worst_group_accuracy")
HEADERS = ("test WGA", "test balanced acc", "val WGA")


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def rows(results) -> list[dict]:
    cells: dict[tuple[str, str], list] = {}
    for result in results:
        cells.setdefault((result.mixture, result.method), []).append(result)
    out = []
    for (mixture, method), group in cells.items():
        row = {"mixture": mixture, "method": method, "seeds": len(group)}
        for column in COLUMNS:
            row[column] = [r.metrics[column] for r in group]
        out.append(row)
    return out


def markdown(results, title: str) -> str:
    lines = [
        f"## {title}",
        "",
        "WGA = worst-group accuracy; balanced = unweighted mean of group accuracies; mean ± std over seeds.",
        "",
        "| mixture | method | seeds | " + " | ".join(HEADERS) + " |",
        "|---|---|---|" + "---|" * len(HEADERS),
    ]
    for row in rows(results):
        cells = [_mean_std(row[c]) for c in COLUMNS]
        lines.append(f"| {row['mixture']} | {row['method']} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(results, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mixture", "method", "seed", "run_id", *COLUMNS])
        for r in results:
            writer.writerow([r.mixture, r.method, r.seed, r.run_id, *(r.metrics[c] for c in COLUMNS)])


def bar_chart(results, path: Path, title: str) -> None:
    """Test WGA and balanced accuracy per cell, one bar pair each, seeds as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(results)
    fig, ax = plt.subplots(figsize=(1.6 * len(table) + 2, 3.6))
    for i, row in enumerate(table):
        for offset, column, colour, label in (
            (-0.18, "test/worst_group_accuracy", "#c0392b", "test WGA"),
            (0.18, "test/balanced_accuracy", "#2c7fb8", "test balanced acc"),
        ):
            values = row[column]
            ax.bar(i + offset, statistics.mean(values), width=0.34, color=colour, alpha=0.75, label=label if i == 0 else None)
            ax.scatter([i + offset] * len(values), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(table)), [f"{r['mixture']}\n{r['method']}" for r in table])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
