"""Deep Feature Reweighting (Kirichenko et al., 2023), the paper's protocol (docs/protocol.md, "Methods").

DFR trains its stages as ERM (``base_method``), then refits the last layer on the finished
model's penultimate features of the *validation* set, L2-normalized and then standardised with
sklearn's ``StandardScaler`` (as the reference and Kirichenko et al. do):

1. C is tuned over ``C_GRID`` for an L1 logistic regression. Validation is split in half (within
   each group); ONE group-balanced subsample of the first half, drawn once, trains every C, with
   the scaler fit on that subsample; each C is scored by worst-group accuracy on the other half
   (standardised by the same scaler); ties go to the first C of the grid.
2. The final head is the average (weights and intercepts) of ``NUM_FITS`` fits with that C, each
   on a fresh group-balanced subsample of the whole validation set, standardised by a scaler fit
   on all validation features. Deliberate deviation: the reference fits this final scaler on the
   *training* features, but our post-hoc step extracts only validation and test features
   (train/posthoc.py), and a pass over the whole training set (or mix) just for a mean and a
   variance is not worth its cost.

The returned head (``DFRHead``) applies the same L2-normalization and final scaler to the
features it predicts on. Features are computed once per model and cached, so DFR itself costs
seconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from fake2real.train.methods.base import Method, register
from fake2real.train.metrics import evaluate_predictions

C_GRID = (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
NUM_FITS = 20


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def balanced_subsample(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices: ``min_g n_g`` samples of every present group, drawn without replacement."""
    present = np.unique(groups)
    size = min(int((groups == g).sum()) for g in present)
    picked = [rng.choice(np.flatnonzero(groups == g), size=size, replace=False) for g in present]
    return np.sort(np.concatenate(picked))


def stratified_halves(groups: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the indices, each group split in half (the first gets the odd one)."""
    first, second = [], []
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        cut = (len(members) + 1) // 2
        first.append(members[:cut])
        second.append(members[cut:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def fit_logistic(x: np.ndarray, labels: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """L1 logistic regression: ``(coef (K', D), intercept (K',))``; K' = 1 for two classes."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, l1_ratio=1.0, solver="saga", max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, labels)
    return model.coef_.copy(), model.intercept_.copy()


def fit_scaler(x: np.ndarray):
    """sklearn's ``StandardScaler`` fit on ``x`` (zero mean, unit variance per feature)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(x)


def predict(head: tuple[np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    coef, intercept = head
    scores = x @ coef.T + intercept
    if scores.shape[1] == 1:
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(axis=1)


@dataclass(frozen=True)
class DFRHead:
    """The refit last layer on raw penultimate features: L2-normalize, standardise, linear head."""

    scaler: Any
    coef: np.ndarray
    intercept: np.ndarray

    def predict(self, x: np.ndarray) -> np.ndarray:
        features = self.scaler.transform(l2_normalize(np.asarray(x, dtype=np.float64)))
        return predict((self.coef, self.intercept), features)


def choose_c(wga_by_c: dict[float, float]) -> float:
    """The C with the best held-out WGA; ties go to the first in grid order."""
    best = max(wga_by_c.values())
    return next(c for c in wga_by_c if wga_by_c[c] == best)


def fit_dfr(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, seed: int, num_groups: int):
    """``(DFRHead, chosen C, {C: held-out WGA})`` from raw validation features."""
    x = l2_normalize(np.asarray(x, dtype=np.float64))
    rng = np.random.default_rng(seed)
    names = [str(g) for g in range(num_groups)]
    tune, held_out = stratified_halves(groups, rng)
    subset = tune[balanced_subsample(groups[tune], rng)]  # one subsample: every C sees the same data
    scaler = fit_scaler(x[subset])
    x_fit, x_held_out = scaler.transform(x[subset]), scaler.transform(x[held_out])
    wga_by_c = {}
    for c in C_GRID:
        head = fit_logistic(x_fit, labels[subset], c, seed)
        scored = evaluate_predictions(predict(head, x_held_out), labels[held_out], groups[held_out], names, "held_out")
        wga_by_c[c] = scored["held_out/worst_group_accuracy"]
    c = choose_c(wga_by_c)
    scaler = fit_scaler(x)  # deviation: the reference fits it on training features (module docstring)
    x = scaler.transform(x)
    fits = []
    for _ in range(NUM_FITS):
        subset = balanced_subsample(groups, rng)
        fits.append(fit_logistic(x[subset], labels[subset], c, seed))
    head = DFRHead(scaler, np.mean([f[0] for f in fits], axis=0), np.mean([f[1] for f in fits], axis=0))
    return head, c, wga_by_c


@register
class DFR(Method):
    name = "dfr"
    uses_groups = True
    base_method = "erm"

    def loss(self, batch, reducer):  # never trains: its stages run base_method
        raise RuntimeError("dfr trains its stages as 'erm' and refits post hoc")

    @classmethod
    def posthoc(cls, features, seed):
        val = features["val"]
        num_groups = int(max(features[s]["groups"].max() for s in features) + 1)
        head, c, wga_by_c = fit_dfr(val["x"], val["labels"], val["groups"], seed, num_groups)
        return {
            "predict": head.predict,
            "params": {"dfr/C": c, **{f"dfr/held_out_wga/C_{c_}": w for c_, w in wga_by_c.items()}},
        }
