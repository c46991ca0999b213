"""Mixtures of real and synthetic data: how many synthetic images, and which stages run.

- ``none``: one stage on real data with the chosen method.
- ``ffr``: stage 1 trains ERM on group-balanced synthetic data only (N // n_groups per group,
  N = the USB budget Σ_g (max_g n_g − n_g)); stage 2 starts from stage 1's selected checkpoint
  (head included) and trains on real data with the chosen method. Every stage, stage 1 included,
  selects its epoch by worst-group accuracy on the *real* validation set.
"""

from __future__ import annotations

from dataclasses import dataclass

from fake2real.errors import ConfigError


@dataclass(frozen=True)
class StagePlan:
    name: str  # "stage1_synthetic", "real", ...
    data: str  # which table it trains on: "real" or "synthetic"
    method: str | None  # None: the experiment's method
    init_from_previous: bool


@dataclass(frozen=True)
class Mixture:
    name: str
    needs_synthetic: bool
    stages: tuple[StagePlan, ...]

    def synthetic_counts(self, real_train_counts: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
        """Images to generate per (y, b) group, from the real training set's group counts."""
        if not self.needs_synthetic:
            return {}
        return synthetic_counts(self.name, real_train_counts)


def usb_budget(counts: dict[tuple[int, int], int]) -> int:
    """Synthetic images USB adds: every group filled up to the largest real group."""
    largest = max(counts.values())
    return sum(largest - n for n in counts.values())


# The paper's synthetic budgets. usb: each group up to the largest real group. asb and ffr: the
# same total N as usb, N // n_groups to every group (asb mixes it with real data, ffr does not).
COUNT_RULES = ("usb", "asb", "ffr")


def synthetic_counts(rule: str, real_train_counts: dict[tuple[int, int], int]) -> dict[tuple[int, int], int]:
    """Per-group synthetic counts under ``rule``; groups that get none are left out."""
    if rule not in COUNT_RULES:
        raise ConfigError(f"config: unknown synthetic count rule '{rule}' (known: {', '.join(COUNT_RULES)})")
    budget = usb_budget(real_train_counts)
    if rule == "usb":
        largest = max(real_train_counts.values())
        counts = {group: largest - n for group, n in real_train_counts.items() if largest > n}
    else:
        counts = {group: budget // len(real_train_counts) for group in real_train_counts}
    if not counts or min(counts.values()) <= 0:
        raise ConfigError(
            f"mixture {rule}: the USB budget is {budget} synthetic images, fewer than one per group "
            f"for {len(real_train_counts)} groups (set generation.images_per_group)"
        )
    return counts


MIXTURES = {
    "none": Mixture("none", False, (StagePlan("real", "real", None, False),)),
    "ffr": Mixture(
        "ffr",
        True,
        (StagePlan("stage1_synthetic", "synthetic", "erm", False), StagePlan("stage2_real", "real", None, True)),
    ),
}


def get_mixture(name: str) -> Mixture:
    try:
        return MIXTURES[name]
    except KeyError:
        raise ConfigError(f"config: unknown mixture '{name}' (known: {', '.join(sorted(MIXTURES))})") from None
