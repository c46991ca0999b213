"""Image tables decoded into in-memory tensors for one training stage."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fake2real.data.groups import group_index
from fake2real.data.images import decode_rgb
from fake2real.data.table import read_table
from fake2real.errors import DataError


@dataclass
class ImageTensors:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    groups: torch.Tensor  # int64 (N,): (y, b) group index
    sources: torch.Tensor  # int64 (N,): g, 0 real / 1 synthetic

    def __len__(self) -> int:
        return len(self.labels)

    def source_groups(self, num_groups: int) -> torch.Tensor:
        """(y, b, g) group index: the (y, b) index, offset by ``num_groups`` for synthetic rows."""
        return self.sources * num_groups + self.groups


def load_split(path: str, split: str, num_biases: int) -> ImageTensors:
    table = read_table(path, split=split, columns=["id", "image", "y", "b", "g"])
    if table.num_rows == 0:
        raise DataError(f"table {path} has no '{split}' rows")
    images = []
    for image_id, data in zip(table.column("id").to_pylist(), table.column("image").to_pylist()):
        try:
            images.append(decode_rgb(data))
        except RuntimeError as exc:
            raise DataError(f"table {path}: image {image_id} cannot be decoded: {str(exc).splitlines()[0]}") from None
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) != 1:
        raise DataError(f"table {path} '{split}': images have different sizes {sorted(shapes)[:3]}; resize at ingestion")
    y = table.column("y").to_numpy().copy()
    b = table.column("b").to_numpy().copy()
    return ImageTensors(
        images=torch.stack(images),
        labels=torch.as_tensor(y, dtype=torch.int64),
        groups=torch.as_tensor(group_index(y, b, num_biases), dtype=torch.int64),
        sources=torch.as_tensor(table.column("g").to_numpy().copy(), dtype=torch.int64),
    )


def concat(parts: list[ImageTensors]) -> ImageTensors:
    if len(parts) == 1:
        return parts[0]
    shapes = {tuple(p.images.shape[1:]) for p in parts}
    if len(shapes) != 1:
        raise DataError(f"tables to mix have different image sizes {sorted(shapes)}; generate at the real table's size (generation.output_size)")
    return ImageTensors(*(torch.cat([getattr(p, f) for p in parts]) for f in ("images", "labels", "groups", "sources")))
