"""The G-leakage probe: how much a model's features encode "this image is synthetic".

A linear probe (L2 logistic regression) on frozen, L2-normalized penultimate features predicts
the source g (real vs synthetic) on a held-out set balanced within every (y, b) group, so that
neither class nor bias can stand in for the source. It is fit on one half (split within each
(group, source) cell) and scored by AUROC on the other: 0.5 = the features carry no trace of the
generator, 1.0 = real and synthetic are linearly separable. This is the mechanism FFR argues
about (a "synthetic + B" shortcut needs G to be encoded) and that the paper never measured.
"""

from __future__ import annotations

import numpy as np


def balanced_by_group(real_groups: np.ndarray, synthetic_groups: np.ndarray, rng: np.random.Generator):
    """Indices into the real and the synthetic set: per group present in both, min(n_real, n_syn) of each."""
    real_pick, synthetic_pick = [], []
    for g in np.intersect1d(np.unique(real_groups), np.unique(synthetic_groups)):
        real_members, synthetic_members = np.flatnonzero(real_groups == g), np.flatnonzero(synthetic_groups == g)
        n = min(len(real_members), len(synthetic_members))
        real_pick.append(rng.choice(real_members, size=n, replace=False))
        synthetic_pick.append(rng.choice(synthetic_members, size=n, replace=False))
    if not real_pick:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    return np.sort(np.concatenate(real_pick)), np.sort(np.concatenate(synthetic_pick))


def g_leakage_auroc(real_x, real_groups, synthetic_x, synthetic_groups, seed: int) -> float:
    """AUROC of a linear real-vs-synthetic probe on held-out halves (NaN if too few samples)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    real_index, synthetic_index = balanced_by_group(np.asarray(real_groups), np.asarray(synthetic_groups), rng)
    x = np.concatenate([real_x[real_index], synthetic_x[synthetic_index]]).astype(np.float64)
    x = x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)
    source = np.concatenate([np.zeros(len(real_index), np.int64), np.ones(len(synthetic_index), np.int64)])
    cell = np.concatenate([real_groups[real_index], synthetic_groups[synthetic_index]]) * 2 + source
    fit = np.zeros(len(x), dtype=bool)
    for c in np.unique(cell):
        members = rng.permutation(np.flatnonzero(cell == c))
        fit[members[: len(members) // 2]] = True
    held_out = ~fit
    if len(np.unique(source[fit])) < 2 or len(np.unique(source[held_out])) < 2:
        return float("nan")
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(x[fit], source[fit])
    return float(roc_auc_score(source[held_out], probe.decision_function(x[held_out])))
