"""Group metrics with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from fake2real.train.metrics import evaluate_predictions, group_correct_total, improves, selection_key, summarize

NAMES = ["y0_b0", "y0_b1", "y1_b0", "y1_b1"]


def test_evaluate_predictions_with_zero_group_and_absent_group():
    # group 0 (y0_b0): 4 samples, 3 correct -> 0.75
    # group 1 (y0_b1): 2 samples, 0 correct -> 0.0
    # group 2 (y1_b0): absent from the split
    # group 3 (y1_b1): 4 samples, 4 correct -> 1.0
    labels = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    predictions = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    groups = [0, 0, 0, 0, 1, 1, 3, 3, 3, 3]
    metrics = evaluate_predictions(np.array(predictions), np.array(labels), np.array(groups), NAMES, "val")
    assert set(metrics) == {
        "val/worst_group_accuracy",
        "val/balanced_accuracy",
        "val/overall_accuracy",
        "val/group/y0_b0/accuracy",
        "val/group/y0_b1/accuracy",
        "val/group/y1_b1/accuracy",
    }
    assert metrics["val/group/y0_b0/accuracy"] == pytest.approx(0.75)
    assert metrics["val/group/y0_b1/accuracy"] == 0.0
    assert metrics["val/group/y1_b1/accuracy"] == 1.0
    assert metrics["val/worst_group_accuracy"] == 0.0
    # (0.75 + 0 + 1) / 3 = 0.583333...: the absent group is not counted as 0
    assert metrics["val/balanced_accuracy"] == pytest.approx(0.5833333333333334)
    # 7 correct of 10
    assert metrics["val/overall_accuracy"] == pytest.approx(0.7)
    assert all(isinstance(v, float) for v in metrics.values())


def test_overall_and_balanced_differ_on_imbalanced_groups():
    # group 0: 8 samples all correct (1.0); group 1: 2 samples none correct (0.0)
    labels = [0] * 8 + [1] * 2
    predictions = [0] * 8 + [0] * 2
    groups = [0] * 8 + [1] * 2
    metrics = evaluate_predictions(predictions, labels, groups, ["g0", "g1"], "test")
    assert metrics["test/overall_accuracy"] == pytest.approx(0.8)  # 8 / 10
    assert metrics["test/balanced_accuracy"] == pytest.approx(0.5)  # (1 + 0) / 2
    assert metrics["test/worst_group_accuracy"] == 0.0


def test_all_correct():
    metrics = evaluate_predictions([1, 0, 1], [1, 0, 1], [3, 0, 2], NAMES, "train")
    # group y0_b1 absent; the three others each 1/1
    assert metrics["train/worst_group_accuracy"] == 1.0
    assert metrics["train/balanced_accuracy"] == 1.0
    assert metrics["train/overall_accuracy"] == 1.0
    assert "train/group/y0_b1/accuracy" not in metrics


def test_worst_group_picks_minimum():
    # g0: 1/2 = 0.5, g1: 2/3 = 0.6667, g2: 1/4 = 0.25
    labels = [0, 0, 1, 1, 1, 0, 0, 0, 0]
    predictions = [0, 1, 1, 1, 0, 0, 1, 1, 1]
    groups = [0, 0, 1, 1, 1, 2, 2, 2, 2]
    metrics = evaluate_predictions(predictions, labels, groups, ["a", "b", "c"], "val")
    assert metrics["val/worst_group_accuracy"] == pytest.approx(0.25)
    # (0.5 + 0.666667 + 0.25) / 3 = 0.472222
    assert metrics["val/balanced_accuracy"] == pytest.approx(0.4722222222222222)
    # 4 correct of 9
    assert metrics["val/overall_accuracy"] == pytest.approx(0.4444444444444444)


def test_group_correct_total():
    correct, total = group_correct_total([0, 1, 1], [0, 0, 1], [0, 0, 2], 4)
    assert correct.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert total.tolist() == [2.0, 0.0, 1.0, 0.0]


def test_summarize_from_summed_counts():
    # As if counts were summed over workers: g0 3/4, g1 absent, g2 1/2
    metrics = summarize([3, 0, 1], [4, 0, 2], ["a", "b", "c"], "val")
    assert metrics["val/worst_group_accuracy"] == pytest.approx(0.5)
    assert metrics["val/balanced_accuracy"] == pytest.approx(0.625)  # (0.75 + 0.5) / 2
    assert metrics["val/overall_accuracy"] == pytest.approx(4 / 6)
    assert "val/group/b/accuracy" not in metrics


def test_summarize_with_no_samples_raises():
    with pytest.raises(ValueError, match="val: no samples"):
        summarize([0, 0], [0, 0], ["a", "b"], "val")


def _val(wga: float, balanced: float, loss: float) -> dict:
    return {"val/worst_group_accuracy": wga, "val/balanced_accuracy": balanced, "val/loss": loss}


def test_selection_breaks_saturated_wga_ties_by_balanced_accuracy_then_loss():
    # WGA first, whatever the rest.
    assert selection_key(_val(0.9, 0.5, 9.0)) > selection_key(_val(0.8, 1.0, 0.1))
    # Equal WGA (saturated at 1.0 with 10 minority images): higher balanced accuracy wins …
    assert selection_key(_val(1.0, 0.98, 0.9)) > selection_key(_val(1.0, 0.95, 0.1))
    # … and with that equal too, the lower validation loss.
    assert selection_key(_val(1.0, 0.98, 0.2)) > selection_key(_val(1.0, 0.98, 0.3))


def test_of_equal_candidates_the_earlier_is_kept():
    epochs = [_val(1.0, 0.98, 0.2), _val(1.0, 0.98, 0.2), _val(1.0, 0.99, 0.5), _val(1.0, 0.99, 0.5), _val(0.9, 1.0, 0.0)]
    best, chosen = None, None
    for epoch, metrics in enumerate(epochs):
        if improves(selection_key(metrics), best):
            best, chosen = selection_key(metrics), epoch
    assert chosen == 2  # balanced accuracy broke the tie; the equal epoch 3 did not replace it
    assert improves(selection_key(epochs[0]), None)
    # The search picks its trial the same way: max() keeps the first of equal keys.
    assert max(range(len(epochs)), key=lambda i: selection_key(epochs[i])) == 2
