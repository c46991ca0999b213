"""Named presets: overrides applied on top of the defaults (the built-in benchmark)."""

from __future__ import annotations

from fake2real.errors import ConfigError

# The reference's training protocol (mqraitem/From-Fake-to-Real): Adam, weight decay 1e-5, batch
# 128, 50 epochs, lr 1e-3 (1e-4 for FFR's synthetic stage 1 and for ASB), 224² images, no
# augmentation. Every real-dataset config in configs/ carries the same values (a test checks).
REFERENCE_TRAINING = {
    "real": {"epochs": 50, "lr": 1e-3, "weight_decay": 1e-5, "batch_size": 128},
    "synthetic": {"epochs": 50, "lr": 1e-4, "weight_decay": 1e-5, "batch_size": 128},
    "asb": {"epochs": 50, "lr": 1e-4, "weight_decay": 1e-5, "batch_size": 128},
}

PRESETS: dict[str, dict] = {
    # The README's main command: the built-in benchmark, none/ffr × erm/groupdro, three seeds, so
    # its table has intervals (one seed's FFR figures moved between machines by up to 0.34 WGA).
    # One worker per stage (train/local.py: no worker group to start), experiments side by side.
    "quick": {"name": "quick", "sweep": {"seeds": [0, 1, 2]}, "train": {"num_workers": 1}},
    # Seconds of training, for tests: tiny tables, one epoch, FFR's shared stage 1 and a 2-trial search per cell.
    "smoke": {
        "name": "smoke",
        "dataset": {"bias_ratio": 0.9, "val_floor": 2, "shapes": {"train_per_group": 40, "val_per_group": 10, "test_per_group": 10}},
        "generation": {"batch_size": 16},
        # One worker per stage (train/local.py: no worker group to start; tests that need the
        # TorchTrainer path ask for two); 0.9 CPU per worker: with two workers, a search trial's
        # driver (0.1) still fits on 2 cores.
        "train": {"num_workers": 1, "cpus_per_worker": 0.9, "real": {"epochs": 1, "batch_size": 32},
                  "synthetic": {"epochs": 1, "batch_size": 32}},
        "sweep": {"mixtures": ["ffr"], "methods": ["erm", "groupdro"], "seeds": [0], "search": {"num_samples": 2}},
    },
    # The paper's grid for a GPU cluster, on the dataset of --config (e.g. configs/celeba/r0.99.yaml):
    # every bias ratio, every mixture and method, a 16-trial search per cell, 3 seeds.
    "paper": {
        "name": "paper",
        # A preempted or lost worker restarts the stage from its last checkpoint, up to 3 times.
        "train": {"model": "resnet50", "use_gpu": True, "num_workers": 1, "cpus_per_worker": 8, "max_failures": 3, **REFERENCE_TRAINING},
        "sweep": {
            "bias_ratios": [0.9, 0.95, 0.97, 0.99, 0.999],
            "mixtures": ["none", "usb", "asb", "ffr"],
            "methods": ["erm", "groupdro", "resample", "reweight", "jtt", "dfr"],
            "ablation_mixtures": ["ffr_reversed", "ffr_unbalanced", "ffr_biased", "synthetic_only", "ffr_degraded"],
            "ablation_methods": ["erm"],
            "seeds": [0, 1, 2],
            # Stage 2 searches lr, weight decay, epochs, freeze_bn and the method's own space;
            # FFR's stage 1 is searched first, once per r, as the reference chose it by val WGA.
            "search": {"num_samples": 16, "stage1": True},
        },
    },
}


def preset(name: str | None) -> dict:
    if name is None:
        return {}
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}' (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]
