"""Group metrics (WILDS-style ``eval``): per-group accuracy, worst-group and balanced accuracy.

- ``worst_group_accuracy``: min over groups of the group's accuracy.
- ``balanced_accuracy``: unweighted mean of the group accuracies.
- ``overall_accuracy``: correct / total over the split's samples (weighted by that split's
  group sizes — *not* balanced, and not train-weighted either).
Groups with no samples in the split are left out and get no metric.

Model selection (``selection_key``): the highest validation WGA; ties — frequent when a minority
group has 10 validation images and WGA saturates at 1.0 — go to the higher validation balanced
accuracy, then to the lower validation loss, then to the earlier candidate.
"""

from __future__ import annotations

import numpy as np


def group_correct_total(predictions, labels, groups, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels, groups = (np.asarray(a) for a in (predictions, labels, groups))
    correct = np.bincount(groups, weights=(predictions == labels).astype(np.float64), minlength=num_groups)
    total = np.bincount(groups, minlength=num_groups).astype(np.float64)
    return correct, total


def summarize(correct, total, group_names: list[str], prefix: str) -> dict[str, float]:
    """Metric dict with MLflow-safe keys, e.g. ``val/group/y1_b0/accuracy``."""
    correct, total = np.asarray(correct, dtype=np.float64), np.asarray(total, dtype=np.float64)
    present = total > 0
    if not present.any():
        raise ValueError(f"{prefix}: no samples to evaluate")
    accuracy = np.divide(correct, total, out=np.zeros_like(correct), where=present)
    metrics = {
        f"{prefix}/worst_group_accuracy": float(accuracy[present].min()),
        f"{prefix}/balanced_accuracy": float(accuracy[present].mean()),
        f"{prefix}/overall_accuracy": float(correct.sum() / total.sum()),
    }
    for name, acc, seen in zip(group_names, accuracy, present):
        if seen:
            metrics[f"{prefix}/group/{name}/accuracy"] = float(acc)
    return metrics


def evaluate_predictions(predictions, labels, groups, group_names: list[str], prefix: str) -> dict[str, float]:
    correct, total = group_correct_total(predictions, labels, groups, len(group_names))
    return summarize(correct, total, group_names, prefix)


def selection_key(metrics: dict, prefix: str = "val") -> tuple[float, float, float]:
    """Orders candidate models (epochs, trials): larger is better; see the module docstring."""
    return (
        metrics[f"{prefix}/worst_group_accuracy"],
        metrics.get(f"{prefix}/balanced_accuracy", float("-inf")),
        -metrics.get(f"{prefix}/loss", float("inf")),
    )


def improves(key, best) -> bool:
    """Whether a candidate with selection ``key`` replaces the best so far (``best``: its key, or
    None before any candidate). Strictly better only: of equal candidates the earlier is kept."""
    return best is None or tuple(key) > tuple(best)
