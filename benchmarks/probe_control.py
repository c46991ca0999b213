"""Controls for the G-leakage probe: how separable are real and synthetic images *before* training?

    python benchmarks/probe_control.py --config configs/evidence/builtin.yaml   # after that sweep ran

A trained model's probe AUROC (``probe/g_leakage_auroc``) means little on its own: if real and
synthetic test images are linearly separable in raw pixels or in the features of an untrained
network, an AUROC near 1 says the *images* differ, not that training taught the model G. This
runs the same probe (same balanced held-out protocol, ``train/probe.py``) on the real and the
synthetic test sets of a config's workspace with (a) raw pixels, (b) per-channel colour statistics,
(c) penultimate features of the config's model at random initialisation (3 inits). Tables are
built if missing. Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fake2real.config import build_config
from fake2real.data.table import read_info
from fake2real.prepare.pools import prepare_synthetic
from fake2real.train.models import build_model
from fake2real.train.probe import g_leakage_auroc
from fake2real.train.tensors import ImageTensors, load_split
from fake2real.prepare.workspace import Workspace, prepare_real

SEEDS = (0, 1, 2)


def pixels(data: ImageTensors) -> np.ndarray:
    small = torch.nn.functional.interpolate(data.images.float(), size=(16, 16), mode="area")
    return small.flatten(1).numpy()


def colour_statistics(data: ImageTensors) -> np.ndarray:
    x = data.images.float().flatten(2)
    return torch.cat([x.mean(2), x.std(2)], dim=1).numpy()


@torch.no_grad()
def random_features(data: ImageTensors, model_name: str, num_classes: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes).eval()
    return torch.cat([model.features(data.images[i : i + 256]) for i in range(0, len(data), 256)]).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the sweep's config (its workspace holds the tables)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    config = build_config(args.config, args.overrides)
    workspace = Workspace.create(config)
    real_table = prepare_real(config, workspace)
    synthetic_table = prepare_synthetic(config, workspace, test=True)
    info = read_info(real_table)
    real, synthetic = (load_split(str(table), "test", info.num_biases) for table in (real_table, synthetic_table))
    num_classes = info.num_classes
    print(f"real test: {len(real)} images ({real_table}); synthetic test: {len(synthetic)} images ({synthetic_table})\n")
    print("| representation | G-leakage AUROC (mean over 3 probe/init seeds) | per seed |\n|---|---|---|")
    rows = {
        "raw pixels (16×16)": [g_leakage_auroc(pixels(real), real.groups.numpy(), pixels(synthetic), synthetic.groups.numpy(), s) for s in SEEDS],
        "colour mean/std per channel": [
            g_leakage_auroc(colour_statistics(real), real.groups.numpy(), colour_statistics(synthetic), synthetic.groups.numpy(), s) for s in SEEDS
        ],
        f"{config.train.model}, random init": [
            g_leakage_auroc(random_features(real, config.train.model, num_classes, s), real.groups.numpy(),
                            random_features(synthetic, config.train.model, num_classes, s), synthetic.groups.numpy(), s)
            for s in SEEDS
        ],
    }
    for name, values in rows.items():
        print(f"| {name} | {np.mean(values):.3f} | {', '.join(f'{v:.3f}' for v in values)} |")


if __name__ == "__main__":
    main()
