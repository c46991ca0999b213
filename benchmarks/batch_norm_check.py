"""Does a selected model evaluate badly because of its batch-norm running statistics?

Evaluates a stage's saved model on a table's test split twice: with the running statistics it was
saved with, and with statistics re-estimated over the table's training images (the weights
untouched). Per-group accuracies that change from one class for every image to a real rule mean
the statistics, not the weights, failed; docs/results/fashion.md ("Random weights") used it:

    python benchmarks/batch_norm_check.py --table <output_dir>/data/real-… \\
        --checkpoint <stage run>/checkpoint_…/best_model.pt --model efficientnet_lite0 --input-size 64
"""

from __future__ import annotations

import argparse

import torch

from fake2real import cli
from fake2real.train.spec import BEST_MODEL
from fake2real.train.models import build_model
from fake2real.train.tensors import load_split

NUM_BIASES = 2


def group_accuracies(model, split) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(split.images[i:i + 256]).argmax(1) for i in range(0, len(split), 256)])
    accuracies = {}
    for group in sorted(set(split.groups.tolist())):
        members = split.groups == group
        y, b = divmod(group, NUM_BIASES)
        accuracies[f"y{y}_b{b}"] = round((predicted[members] == split.labels[members]).float().mean().item(), 3)
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", required=True, help="the real table the stage trained on")
    parser.add_argument("--checkpoint", required=True, help=f"a checkpoint folder or its {BEST_MODEL}")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--input-size", type=int)
    args = parser.parse_args()
    path = args.checkpoint if args.checkpoint.endswith(".pt") else f"{args.checkpoint.rstrip('/')}/{BEST_MODEL}"
    model = build_model(args.model, 2, None, args.input_size)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    train, test = load_split(args.table, "train", NUM_BIASES), load_split(args.table, "test", NUM_BIASES)
    print("saved running statistics:", group_accuracies(model, test))
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over every batch below
    model.train()
    with torch.no_grad():
        for i in range(0, len(train), 64):
            model(train.images[i:i + 64])
    print("statistics re-estimated on the training images:", group_accuracies(model, test))


if __name__ == "__main__":
    cli.main(main)
