"""resample, reweight, JTT, DFR and the G-leakage probe against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fake2real.train.epoch import shard
from fake2real.train.methods import Batch, Reducer
from fake2real.train.methods.dfr import (
    C_GRID,
    DFR,
    NUM_FITS,
    balanced_subsample,
    choose_c,
    fit_dfr,
    l2_normalize,
    stratified_halves,
)
from fake2real.train.metrics import evaluate_predictions
from fake2real.train.methods.jtt import JTT
from fake2real.train.methods.resample import Resample
from fake2real.train.methods.reweight import Reweight
from fake2real.train.probe import balanced_by_group, g_leakage_auroc

# 6 samples: group 0 ×3, group 1 ×1, group 2 ×2; group 3 empty
GROUPS = np.array([0, 0, 0, 1, 2, 2])


def test_resample_weights_are_inverse_group_sizes():
    method = Resample({}, GROUPS, 4)
    assert method.sample_weights().tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0, 0.5, 0.5])


def test_resample_epoch_draws_dataset_size_with_replacement_balanced():
    method = Resample({}, GROUPS, 4)
    generator = torch.Generator().manual_seed(0)
    epoch = method.epoch_indices(0, generator)
    assert len(epoch) == len(GROUPS)
    draws = torch.cat([method.epoch_indices(e, generator) for e in range(3000)])
    share = np.bincount(GROUPS[draws.numpy()], minlength=3) / len(draws)
    # each of the 3 present groups drawn 1/3 of the time (18,000 draws: ±0.01)
    assert share.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=0.01)
    # same generator seed → same epoch
    again = Resample({}, GROUPS, 4).epoch_indices(0, torch.Generator().manual_seed(0))
    assert torch.equal(epoch, again)


def test_reweight_weights_and_loss():
    method = Reweight({}, GROUPS, 4)
    # N / (G · n_g) with N = 6, G = 3 present groups: [6/9, 6/3, 6/6, 0]
    assert method.group_weights.tolist() == pytest.approx([2 / 3, 2.0, 1.0, 0.0])
    # mean weight over the training set is 1
    assert method.group_weights[GROUPS].mean().item() == pytest.approx(1.0)
    losses = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    batch = Batch(per_sample_loss=losses, logits=torch.zeros(3, 2), labels=torch.zeros(3, dtype=torch.int64), groups=torch.tensor([0, 1, 2]),
                  features=torch.zeros(3, 1))
    loss = method.loss(batch, Reducer())
    assert loss.item() == pytest.approx((2 / 3 * 1 + 2 * 2 + 1 * 3) / 3)


def test_jtt_error_set_upsampled_lambda_times():
    method = JTT({"identification_epochs": 2, "upweight": 5}, GROUPS, 4)
    assert method.warmup_epochs == 2
    generator = torch.Generator().manual_seed(0)
    assert sorted(method.epoch_indices(0, generator).tolist()) == [0, 1, 2, 3, 4, 5]  # phase 1: plain ERM
    method.after_warmup(np.array([True, True, False, True, False, True]))  # errors: samples 2 and 4
    assert method.errors.tolist() == [False, False, True, False, True, False]
    epoch = method.epoch_indices(2, generator)
    # N + (λ − 1)·|errors| = 6 + 4·2 = 14; each error 5 times, the rest once
    assert len(epoch) == 14
    assert np.bincount(epoch.numpy(), minlength=6).tolist() == [1, 1, 5, 1, 5, 1]
    restored = JTT({"identification_epochs": 2, "upweight": 5}, GROUPS, 4)
    restored.load_state_dict(method.state_dict())
    assert torch.equal(restored.errors, method.errors)
    assert JTT({}, GROUPS, 4).state_dict() == {}


def test_shard_matches_distributed_sampler():
    from torch.utils.data import DistributedSampler

    for n, world in ((10, 2), (7, 2), (7, 3)):
        indices = torch.randperm(n, generator=torch.Generator().manual_seed(3))
        for rank in range(world):
            sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=3)
            sampler.set_epoch(0)
            assert shard(indices, rank, world).tolist() == list(sampler)


def test_dfr_balanced_subsample_and_halves():
    rng = np.random.default_rng(0)
    groups = np.array([0] * 7 + [1] * 3 + [2] * 5)
    subset = balanced_subsample(groups, rng)
    assert np.bincount(groups[subset]).tolist() == [3, 3, 3]
    assert len(np.unique(subset)) == len(subset)
    first, second = stratified_halves(groups, rng)
    assert np.bincount(groups[first]).tolist() == [4, 2, 3]
    assert np.bincount(groups[second]).tolist() == [3, 1, 2]
    assert set(first) | set(second) == set(range(len(groups))) and not set(first) & set(second)


def test_dfr_choose_c_best_then_first_in_grid():
    assert choose_c({3.0: 0.5, 1.0: 0.7, 0.3: 0.7, 0.1: 0.2}) == 1.0
    assert C_GRID == (3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003) and NUM_FITS == 20


def test_dfr_head_is_average_of_fits(monkeypatch):
    from fake2real.train.methods import dfr

    fits = iter(range(100))

    def fake_fit(x, labels, c, seed):  # the k-th fit returns coef k, intercept -k
        k = next(fits)
        return np.full((1, x.shape[1]), float(k)), np.array([-float(k)])

    monkeypatch.setattr(dfr, "fit_logistic", fake_fit)
    groups = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    head, c, wga = fit_dfr(np.ones((8, 2)), groups // 2, groups, seed=0, num_groups=4)
    # 7 tuning fits (k = 0..6), then 20 final fits k = 7..26: the average is 16.5
    assert head.coef.tolist() == [[16.5, 16.5]] and head.intercept.tolist() == [-16.5]
    assert list(wga) == list(C_GRID)


def test_dfr_learns_core_feature_from_balanced_validation():
    # feature 0 = class, feature 1 = bias, correlated 95 % in "training" but balanced in val
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    b = rng.integers(0, 2, 400)
    x = np.stack([y * 2.0 - 1, b * 2.0 - 1], axis=1) + rng.normal(0, 0.3, (400, 2))
    head, c, _ = fit_dfr(x, y, y * 2 + b, seed=0, num_groups=4)
    assert (head.predict(x) == y).mean() > 0.95
    assert abs(head.coef[0, 0]) > abs(head.coef[0, 1])


def _tiny_informative_feature(n, rng):
    """Feature 0 separates the classes at scale 0.01; 8 noise features at scale 10 (one = bias)."""
    y, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    informative = (y * 2.0 - 1) * 0.01 + rng.normal(0, 0.001, n)
    noise = rng.normal(0, 10.0, (n, 8))
    noise[:, 0] += (b * 2.0 - 1) * 5
    return {"x": np.column_stack([informative, noise]).astype(np.float32), "labels": y, "groups": y * 2 + b}


class _NoScaling:
    def transform(self, x):
        return x


def _test_wga(features, seed=0):
    refit = DFR.posthoc(features, seed)
    test = features["test"]
    names = [str(g) for g in range(4)]
    return evaluate_predictions(refit["predict"](test["x"]), test["labels"], test["groups"], names, "t")["t/worst_group_accuracy"]


def test_dfr_standardises_features(monkeypatch):
    # After L2-normalization feature 0 is ~0.0002: unscaled, the L1 penalty at every C of the grid
    # makes its weight too costly; standardised, it separates the classes perfectly.
    from fake2real.train.methods import dfr

    rng = np.random.default_rng(0)
    features = {"val": _tiny_informative_feature(400, rng), "test": _tiny_informative_feature(400, rng)}
    assert _test_wga(features) > 0.95
    refit = DFR.posthoc(features, 0)
    x = features["test"]["x"]
    # the predictor L2-normalizes raw features itself: a per-row positive scale changes nothing
    assert np.array_equal(refit["predict"](x * np.linspace(0.5, 40.0, len(x))[:, None]), refit["predict"](x))
    # the same data without the scaler: the head cannot use feature 0
    monkeypatch.setattr(dfr, "fit_scaler", lambda x: _NoScaling())
    assert _test_wga(features) < 0.7


def test_dfr_final_scaler_is_fit_on_all_validation_features():
    rng = np.random.default_rng(3)
    val = _tiny_informative_feature(200, rng)
    head, _, _ = fit_dfr(val["x"], val["labels"], val["groups"], seed=0, num_groups=4)
    normalized = l2_normalize(val["x"].astype(np.float64))
    assert head.scaler.mean_ == pytest.approx(normalized.mean(axis=0), rel=1e-9, abs=1e-12)
    assert head.scaler.scale_ == pytest.approx(normalized.std(axis=0), rel=1e-9, abs=1e-12)


def test_dfr_every_c_fits_the_same_balanced_subsample(monkeypatch):
    from fake2real.train.methods import dfr

    seen, scaled = [], []
    real_fit, real_scaler = dfr.fit_logistic, dfr.fit_scaler

    def spy_fit(x, labels, c, seed):
        seen.append((c, x.copy(), labels.copy()))
        return real_fit(x, labels, c, seed)

    def spy_scaler(x):
        scaled.append(x.copy())
        return real_scaler(x)

    monkeypatch.setattr(dfr, "fit_logistic", spy_fit)
    monkeypatch.setattr(dfr, "fit_scaler", spy_scaler)
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(4), [40, 9, 12, 30])  # unequal groups: subsamples differ per draw
    x = rng.normal(size=(len(groups), 5))
    fit_dfr(x, groups // 2, groups, seed=0, num_groups=4)
    tuning = seen[: len(C_GRID)]
    assert [c for c, _, _ in tuning] == list(C_GRID)
    _, first_x, first_labels = tuning[0]
    # the smallest group has 9 samples, so its tuning half has 5: 4 groups × 5 rows
    assert first_x.shape == (20, 5)
    for _, other_x, other_labels in tuning[1:]:
        assert np.array_equal(other_x, first_x) and np.array_equal(other_labels, first_labels)
    # the tuning scaler was fit on exactly that subsample (so it comes out standardised) ...
    assert first_x.mean(axis=0) == pytest.approx(np.zeros(5), abs=1e-9)
    assert first_x.std(axis=0) == pytest.approx(np.ones(5), abs=1e-9)
    assert len(scaled[0]) == 20
    # ... and the final one on all of validation
    assert len(scaled) == 2 and len(scaled[1]) == len(groups)


def test_probe_balanced_by_group():
    rng = np.random.default_rng(0)
    real, synthetic = np.array([0, 0, 0, 1, 2]), np.array([0, 1, 1, 1, 3])
    r, s = balanced_by_group(real, synthetic, rng)
    # group 0: min(3, 1) = 1; group 1: min(1, 3) = 1; groups 2, 3 in one source only: left out
    assert sorted(real[r].tolist()) == [0, 1] and sorted(synthetic[s].tolist()) == [0, 1]


def test_probe_auroc_separable_and_not():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(4), 100)
    shared = rng.normal(size=(400, 8))
    # G separable: synthetic features shifted along one axis
    separable = g_leakage_auroc(shared, groups, rng.normal(size=(400, 8)) + np.eye(8)[0] * 3, groups, seed=0)
    assert separable > 0.97
    # G absent: both sources from the same distribution
    absent = g_leakage_auroc(rng.normal(size=(400, 8)), groups, rng.normal(size=(400, 8)), groups, seed=0)
    assert abs(absent - 0.5) < 0.08
