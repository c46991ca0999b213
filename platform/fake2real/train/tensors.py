"""A split decoded whole into tensors, in its stable order: for the small evaluation splits that
post-hoc steps and analyses read (training reads splits through ``train/splits.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fake2real.train.splits import read_split


@dataclass
class ImageTensors:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    groups: torch.Tensor  # int64 (N,): (y, b) group index
    sources: torch.Tensor  # int64 (N,): g, 0 real / 1 synthetic

    def __len__(self) -> int:
        return len(self.labels)


def load_split(path: str, split: str, num_biases: int) -> ImageTensors:
    data = read_split(path, split, num_biases)
    return ImageTensors(data.fetch(torch.arange(len(data))), data.labels, data.groups, data.sources)
