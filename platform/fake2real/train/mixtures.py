"""Mixtures of real and synthetic data: how many synthetic images, and which stages run.

- ``none``: one stage on real data with the chosen method.
- ``usb`` / ``asb``: one stage on real + synthetic data mixed; usb fills every (y, b) group up to
  the largest real group, asb spreads the same total N evenly (N // n_groups per group).
  Group-aware methods see (y, b, g) groups on mixed data (docs/design.md §1; docs/protocol.md, "Methods").
- ``ffr``: stage 1 trains ERM on group-balanced synthetic data only (N // n_groups per group);
  stage 2 starts from stage 1's selected checkpoint (head included) and trains on real data
  with the chosen method.
- Ablations the paper's reviewers asked for: ``ffr_reversed`` (real first with the method, then
  synthetic with ERM), ``ffr_unbalanced`` (stage 1 on images generated from prompts without
  bias words), ``synthetic_only`` (the method on FFR's synthetic data alone), ``ffr_degraded``
  (FFR whose synthetic images are pixelated, blurred or degraded by the reference's stack,
  ``generation.ablation_degradation``), ``ffr_biased`` (the reference's ``load_gen_data_biased``:
  FFR whose stage-1 synthetic data keeps the real training data's bias proportions within each
  class instead of balancing them — same total budget as ``ffr``).

Every stage selects its epoch by worst-group accuracy on the *real* validation set. Stages that
compute the same thing share a name, so their hashes match and they run once per sweep (e.g.
``ffr_reversed``'s first stage is ``none``'s stage; ``synthetic_only`` with ERM is FFR's stage 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from fake2real.errors import ConfigError
from fake2real.train.methods import get_method


@dataclass(frozen=True)
class StagePlan:
    name: str  # "stage1_synthetic", "real", ...
    data: str  # which data it trains on: "real", "synthetic" or "mixed" (both, groups (y, b, g))
    method: str | None  # None: the experiment's method
    init_from_previous: bool
    # The train section with its hyperparameters; None: "synthetic" for synthetic data, else "real".
    hparams: str | None = None

    @property
    def hparams_section(self) -> str:
        return self.hparams or ("synthetic" if self.data == "synthetic" else "real")

    def method_for(self, method: str) -> str:
        """What this stage trains in an experiment of ``method``: the stage's own fixed method
        (e.g. ffr_reversed's last), else the experiment's — a post-hoc method (DFR) as its base."""
        return self.method or get_method(method).base_method or method


@dataclass(frozen=True)
class Mixture:
    name: str
    stages: tuple[StagePlan, ...]
    # Which synthetic budget its table is generated with (None: no synthetic data).
    count_rule: str | None = None
    # Generation settings the mixture changes: no bias words in prompts, degraded images.
    bias_words: bool = True
    degrade: bool = False

    @property
    def needs_synthetic(self) -> bool:
        return self.count_rule is not None

    @property
    def pretrains_on_synthetic(self) -> bool:
        """Its first stage trains on synthetic data alone and hands its model to the next (FFR and
        its ablations): the stage a search may search first (``sweep.search.stage1``)."""
        return len(self.stages) > 1 and self.stages[0].data == "synthetic" and self.stages[1].init_from_previous


def usb_budget(counts: dict[tuple[int, int], int]) -> int:
    """Synthetic images USB adds: every group filled up to the largest real group."""
    largest = max(counts.values())
    return sum(largest - n for n in counts.values())


# The paper's synthetic budgets. usb: each group up to the largest real group. asb and ffr: the
# same total N as usb, N // n_groups to every group (asb mixes it with real data, ffr does not).
# biased (the reference's load_gen_data_biased): ffr's N // n_groups per group, pooled per class
# (× the class's groups) and split by the real training data's group shares within the class.
COUNT_RULES = ("usb", "asb", "ffr", "biased")


def synthetic_counts(rule: str, real_train_counts: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    """Per-group synthetic counts under ``rule``; groups that get none are left out."""
    if rule not in COUNT_RULES:
        raise ConfigError(f"config: unknown synthetic count rule '{rule}' (known: {', '.join(COUNT_RULES)})")
    budget = usb_budget(real_train_counts)
    if rule == "usb":
        largest = max(real_train_counts.values())
        counts = {group: largest - n for group, n in real_train_counts.items() if largest > n}
    elif rule == "biased":
        counts = biased_counts(budget // len(real_train_counts), real_train_counts)
    else:
        counts = {group: budget // len(real_train_counts) for group in real_train_counts}
    if not counts or min(counts.values()) <= 0:
        raise ConfigError(
            f"mixture {rule}: the USB budget is {budget} synthetic images, fewer than one per group "
            f"for {len(real_train_counts)} groups (set generation.images_per_group)"
        )
    return counts


def biased_counts(per_group: int, real_train_counts: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    """Per class y: ``per_group × (groups of y)`` images, shared as the real training groups of y
    are. The reference: ``end_idx = int(num_per_group * 2 * share)`` (two bias values per class);
    here in integers, ``per_group · n_y · count // class_total`` (floor, without float rounding).
    Groups that get none (no real image, or a share too small) are left out."""
    classes: dict[int, list[tuple[int, int]]] = {}
    for group in real_train_counts:
        classes.setdefault(group[0], []).append(group)
    counts = {}
    for groups in classes.values():
        total = sum(real_train_counts[g] for g in groups)
        for group in groups:
            n = per_group * len(groups) * real_train_counts[group] // total if total else 0
            if n > 0:
                counts[group] = n
    return counts


_REAL = StagePlan("real", "real", None, False)
_SYNTHETIC_ERM = StagePlan("stage1_synthetic", "synthetic", "erm", False)
_REAL_AFTER_SYNTHETIC = StagePlan("stage2_real", "real", None, True)
_FFR_STAGES = (_SYNTHETIC_ERM, _REAL_AFTER_SYNTHETIC)

MIXTURES = {
    m.name: m
    for m in (
        Mixture("none", (_REAL,)),
        Mixture("usb", (StagePlan("mixed", "mixed", None, False),), count_rule="usb"),
        # The reference trains ASB at lr 1e-4, USB at 1e-3: ASB's stage has its own section.
        Mixture("asb", (StagePlan("mixed", "mixed", None, False, hparams="asb"),), count_rule="asb"),
        Mixture("ffr", _FFR_STAGES, count_rule="ffr"),
        Mixture("ffr_reversed", (_REAL, StagePlan("stage2_synthetic", "synthetic", "erm", True)), count_rule="ffr"),
        Mixture("ffr_unbalanced", _FFR_STAGES, count_rule="ffr", bias_words=False),
        Mixture("synthetic_only", (StagePlan("stage1_synthetic", "synthetic", None, False),), count_rule="ffr"),
        Mixture("ffr_degraded", _FFR_STAGES, count_rule="ffr", degrade=True),
        Mixture("ffr_biased", _FFR_STAGES, count_rule="biased"),
    )
}


def get_mixture(name: str) -> Mixture:
    try:
        return MIXTURES[name]
    except KeyError:
        raise ConfigError(f"config: unknown mixture '{name}' (known: {', '.join(sorted(MIXTURES))})") from None
