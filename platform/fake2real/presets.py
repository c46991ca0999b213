"""Named presets: overrides applied on top of the defaults (the built-in benchmark)."""

from __future__ import annotations

from fake2real.errors import ConfigError

PRESETS: dict[str, dict] = {
    # The README's main command: the built-in benchmark, none/ffr × erm/groupdro, one seed.
    "quick": {"name": "quick"},
    # Seconds of training, for tests: tiny tables, one epoch, FFR's shared stage 1 exercised.
    "smoke": {
        "name": "smoke",
        "dataset": {"bias_ratio": 0.9, "val_floor": 2, "shapes": {"train_per_group": 40, "val_per_group": 10, "test_per_group": 10}},
        "generation": {"batch_size": 16},
        "train": {"real": {"epochs": 1, "batch_size": 32}, "synthetic": {"epochs": 1, "batch_size": 32}},
        "sweep": {"mixtures": ["ffr"], "methods": ["erm", "groupdro"], "seeds": [0]},
    },
}


def preset(name: str | None) -> dict:
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}' (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]
