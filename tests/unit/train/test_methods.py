"""Method registry, hyperparameter resolution, ERM and GroupDRO (hand-computed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fake2real.errors import ConfigError
from fake2real.train.methods import METHODS, Batch, Reducer, get_method, resolve_params
from fake2real.train.methods.erm import ERM
from fake2real.train.methods.groupdro import GroupDRO

LOSSES = [1.0, 1.0, 3.0]
GROUPS = [0, 0, 1]


def losses_batch(per_sample: torch.Tensor, groups: torch.Tensor) -> Batch:
    """A batch for methods whose loss reads per-sample losses and groups only."""
    n = len(per_sample)
    return Batch(per_sample_loss=per_sample, logits=torch.zeros(n, 2), labels=torch.zeros(n, dtype=torch.int64), groups=groups, features=torch.zeros(n, 1))


def _step(method, reducer=None, losses=LOSSES, groups=GROUPS, requires_grad=False):
    per_sample = torch.tensor(losses, dtype=torch.float64, requires_grad=requires_grad)
    loss = method.loss(losses_batch(per_sample, torch.tensor(groups, dtype=torch.int64)), reducer or Reducer())
    return per_sample, loss


def counts_to_groups(counts) -> np.ndarray:
    """Per-sample group indices with these group counts."""
    return np.repeat(np.arange(len(counts)), counts)


def test_registry():
    assert set(METHODS) == {"erm", "groupdro", "resample", "reweight", "dfr", "jtt"}
    assert get_method("erm") is ERM
    assert get_method("groupdro") is GroupDRO
    assert GroupDRO.uses_groups and not ERM.uses_groups


def test_get_method_unknown_lists_known():
    with pytest.raises(ConfigError, match=r"unknown method 'nope' \(known: dfr, erm, groupdro, jtt, resample, reweight\)"):
        get_method("nope")


def test_resolve_params_defaults():
    assert resolve_params(GroupDRO, {}) == {"eta": 0.01, "group_adjustment": 0.0}
    assert resolve_params(ERM, {}) == {}


def test_resolve_params_overrides_and_casts():
    params = resolve_params(GroupDRO, {"eta": 1})
    assert params == {"eta": 1.0, "group_adjustment": 0.0}
    assert isinstance(params["eta"], float)
    assert resolve_params(GroupDRO, {"group_adjustment": 2.0})["group_adjustment"] == 2.0


def test_resolve_params_unknown_param():
    with pytest.raises(ConfigError, match=r"train.method_params.groupdro.etaa: unknown parameter \(known: eta, group_adjustment\)"):
        resolve_params(GroupDRO, {"etaa": 0.1})
    with pytest.raises(ConfigError, match=r"train.method_params.erm.eta: unknown parameter \(known: none\)"):
        resolve_params(ERM, {"eta": 0.1})


@pytest.mark.parametrize("value", ["fast", None, True, [0.1]])
def test_resolve_params_rejects_non_numbers(value):
    with pytest.raises(ConfigError, match="train.method_params.groupdro.eta: expected a number"):
        resolve_params(GroupDRO, {"eta": value})


def test_resolve_params_rejects_value_outside_choice():
    with pytest.raises(ConfigError, match="train.method_params.groupdro.group_adjustment: 2.5 is not one of"):
        resolve_params(GroupDRO, {"group_adjustment": 2.5})


@pytest.mark.parametrize("value", [-0.1, 0.0, 2.0])
def test_resolve_params_rejects_value_outside_its_range(value):
    # eta is searched in loguniform(1e-4, 1): values outside are errors, not silently used.
    with pytest.raises(ConfigError, match=r"train.method_params.groupdro.eta: .* is outside \[0.0001, 1.0\]"):
        resolve_params(GroupDRO, {"eta": value})


def test_method_init_rejects_unknown_params():
    with pytest.raises(ConfigError, match="etaa"):
        GroupDRO({"etaa": 1.0}, counts_to_groups([4, 1]), 2)


def test_erm_loss_is_mean():
    _, loss = _step(ERM({}, counts_to_groups([2, 1]), 2))
    assert loss.item() == pytest.approx(5.0 / 3.0, abs=1e-12)  # (1 + 1 + 3) / 3


def test_groupdro_single_step_hand_computed():
    method = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    assert method.q.tolist() == [0.5, 0.5]
    per_sample, loss = _step(method, requires_grad=True)
    # group losses: g0 = (1 + 1) / 2 = 1, g1 = 3 / 1 = 3
    # q <- [0.5 e^1, 0.5 e^3] normalized = [1 / (1 + e^2), e^2 / (1 + e^2)]
    q0 = 1.0 / (1.0 + math.exp(2.0))
    q1 = math.exp(2.0) / (1.0 + math.exp(2.0))
    assert method.q[0].item() == pytest.approx(q0, abs=1e-6)
    assert method.q[1].item() == pytest.approx(q1, abs=1e-6)
    assert q0 == pytest.approx(0.11920292, abs=1e-6)
    # loss = q0 * 1 + q1 * 3
    assert loss.item() == pytest.approx(q0 * 1.0 + q1 * 3.0, abs=1e-6)
    # d loss / d l_i = q_{g_i} / n_{g_i}: [q0 / 2, q0 / 2, q1 / 1]
    loss.backward()
    assert per_sample.grad.tolist() == pytest.approx([q0 / 2, q0 / 2, q1], abs=1e-6)


def test_groupdro_two_steps_compound():
    method = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    _step(method)
    _step(method)
    # q ∝ [0.5 e^(1+1), 0.5 e^(3+3)] = [1 / (1 + e^4), e^4 / (1 + e^4)]
    assert method.q.tolist() == pytest.approx([1 / (1 + math.exp(4)), math.exp(4) / (1 + math.exp(4))], abs=1e-6)


def test_groupdro_group_adjustment():
    method = GroupDRO({"eta": 1.0, "group_adjustment": 2.0}, counts_to_groups([4, 1]), 2)
    # C / sqrt(n): [2 / 2, 2 / 1] = [1, 2]
    assert method.adjustment.tolist() == pytest.approx([1.0, 2.0])
    _, loss = _step(method)
    # adjusted losses [1 + 2/2, 3 + 2/1] = [2, 5]: q = [e^2, e^5] / (e^2 + e^5) = [1/(1+e^3), e^3/(1+e^3)]
    q0 = 1.0 / (1.0 + math.exp(3.0))
    q1 = math.exp(3.0) / (1.0 + math.exp(3.0))
    assert method.q.tolist() == pytest.approx([q0, q1], abs=1e-6)
    # the loss itself uses the unadjusted group losses
    assert loss.item() == pytest.approx(q0 * 1.0 + q1 * 3.0, abs=1e-6)


def test_groupdro_group_absent_from_batch():
    method = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1, 3]), 3)
    _, loss = _step(method)  # group 2 absent: its loss counts as 0 this step
    # q ∝ [e^1, e^3, e^0] / 3
    z = math.exp(1) + math.exp(3) + 1.0
    assert method.q.tolist() == pytest.approx([math.exp(1) / z, math.exp(3) / z, 1.0 / z], abs=1e-6)
    assert loss.item() == pytest.approx((math.exp(1) * 1 + math.exp(3) * 3) / z, abs=1e-6)


def test_groupdro_empty_training_group_gets_no_weight():
    # group 1 has no training samples: it does not exist (reference: n_groups = len(unique(groups)))
    method = GroupDRO({"eta": 1.0, "group_adjustment": 2.0}, counts_to_groups([4, 0, 1]), 3)
    assert method.q.tolist() == [0.5, 0.0, 0.5]
    # C / sqrt(n) for present groups only: [2 / 2, -, 2 / 1]
    assert method.adjustment.tolist() == pytest.approx([1.0, 0.0, 2.0])
    _, loss = _step(method, groups=[0, 0, 2])
    # adjusted losses [1 + 1, -, 3 + 2]: q = [e^2, 0, e^5] / (e^2 + e^5)
    q0 = 1.0 / (1.0 + math.exp(3.0))
    q2 = math.exp(3.0) / (1.0 + math.exp(3.0))
    assert method.q.tolist() == pytest.approx([q0, 0.0, q2], abs=1e-6)
    assert method.q[1].item() == 0.0
    assert loss.item() == pytest.approx(q0 * 1.0 + q2 * 3.0, abs=1e-6)


def test_groupdro_empty_groups_never_take_q_with_adjustment():
    # SpuCo-like: 8 (y, b) cells, 4 of them empty; C > 0 used to give each empty cell C / sqrt(1).
    counts = [100, 0, 25, 0, 4, 0, 1, 0]
    method = GroupDRO({"eta": 0.1, "group_adjustment": 4.0}, counts_to_groups(counts), 8)
    assert method.q.tolist() == [0.25, 0.0, 0.25, 0.0, 0.25, 0.0, 0.25, 0.0]
    steps = 10
    for _ in range(steps):  # every batch: groups 0, 2, 4 with loss 1; group 6 (present) not drawn
        _step(method, losses=[1.0, 1.0, 1.0], groups=[0, 2, 4])
    assert method.q[[1, 3, 5, 7]].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert method.q.sum().item() == pytest.approx(1.0)
    # q_g ∝ exp(steps · η · (loss_g + C / sqrt(n_g))) over present groups; group 6's loss is 0
    adjusted = {0: 1 + 4 / 10, 2: 1 + 4 / 5, 4: 1 + 4 / 2, 6: 0 + 4 / 1}
    weights = {g: math.exp(steps * 0.1 * a) for g, a in adjusted.items()}
    z = sum(weights.values())
    assert method.q[[0, 2, 4, 6]].tolist() == pytest.approx([weights[g] / z for g in (0, 2, 4, 6)], abs=1e-9)


def test_groupdro_loss_dtype_follows_input():
    method = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    loss = method.loss(losses_batch(torch.tensor(LOSSES, dtype=torch.float32), torch.tensor(GROUPS)), Reducer())
    assert loss.dtype == torch.float32
    assert method.q.dtype == torch.float64


def test_groupdro_state_dict_roundtrip():
    method = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    _step(method)
    state = method.state_dict()
    assert torch.equal(state["q"], method.q)

    restored = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    restored.load_state_dict(state)
    assert torch.equal(restored.q, method.q)
    state["q"].fill_(0.0)  # the loaded q is a copy
    assert restored.q.sum().item() == pytest.approx(1.0)

    _, loss_a = _step(method)
    _, loss_b = _step(restored)
    assert torch.equal(method.q, restored.q)
    assert loss_a.item() == loss_b.item()


def test_groupdro_two_workers_match_one():
    single = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    _, loss_single = _step(single)
    # Two identical shards: the all-reduce sum doubles every count and sum.
    double = GroupDRO({"eta": 1.0}, counts_to_groups([4, 1]), 2)
    per_sample, loss_double = _step(double, reducer=Reducer(world_size=2, sum=lambda t: t * 2), requires_grad=True)
    q0 = 1.0 / (1.0 + math.exp(2.0))
    q1 = math.exp(2.0) / (1.0 + math.exp(2.0))
    assert double.q.tolist() == pytest.approx([q0, q1], abs=1e-6)
    assert double.q.tolist() == pytest.approx(single.q.tolist(), abs=1e-12)
    # 2 * (q0 * 2 / 4 + q1 * 3 / 2) = q0 * 1 + q1 * 3
    assert loss_double.item() == pytest.approx(q0 * 1.0 + q1 * 3.0, abs=1e-6)
    assert loss_double.item() == pytest.approx(loss_single.item(), abs=1e-12)
    # per-worker gradient 2 * q_g / (2 n_g): DDP's average over workers gives the world-1 gradient
    loss_double.backward()
    assert per_sample.grad.tolist() == pytest.approx([q0 / 2, q0 / 2, q1], abs=1e-6)


def test_reducer_defaults():
    reducer = Reducer()
    assert reducer.world_size == 1
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(reducer.sum(t), t)


def test_method_params_accept_exponent_notation_from_overrides():
    from fake2real.config import build_config

    config = build_config(overrides=["train.method_params.groupdro.eta=1e-3"])
    assert resolve_params(GroupDRO, config.train.method_params["groupdro"])["eta"] == pytest.approx(0.001)
