"""Batches of a worker's splits, in the caller's order, fetched ahead of the step that needs them.

- A split held in memory is gathered by a background thread, ``prefetch`` batches ahead (the
  gather of the next batch overlaps the current step; torch releases the GIL).
- A streamed split is decoded by ``workers`` loader processes (a torch ``DataLoader`` kept alive
  across epochs and shared by the streamed splits), ``prefetch`` (at least 1) batches ahead per
  process. They are forked from the trainer and never touch CUDA.

On a GPU host batches come in pinned memory, so the copy to the device can overlap compute.
The order is always the caller's (the method's epoch order, sharded): fetching ahead never
changes what is trained on.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fake2real.errors import DataError
from fake2real.train.splits import Split


class _Chunks(Sampler):
    """The (split name, indices) chunks of the current pass; set before each pass."""

    def __init__(self):
        self.items: list[tuple[str, torch.Tensor]] = []

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class _Fetch(Dataset):
    """Runs in the loader processes: the streamed splits only (in-memory ones stay in the trainer)."""

    def __init__(self, splits: dict[str, Split]):
        self.splits = splits

    def __getitem__(self, item: tuple[str, torch.Tensor]) -> tuple[torch.Tensor | None, str | None]:
        name, index = item
        try:
            return self.splits[name].fetch(index), None
        except DataError as exc:  # re-raised by the trainer: torch would wrap it in a traceback
            return None, str(exc)


class BatchLoader:
    def __init__(self, splits: dict[str, Split], device: torch.device, workers: int, prefetch: int):
        self.splits = splits
        self.pin = device.type == "cuda"
        self.prefetch = prefetch
        self._chunks = _Chunks()
        self._loader = None
        if workers > 0 and any(split.streamed for split in splits.values()):
            self._loader = DataLoader(
                _Fetch({name: split for name, split in splits.items() if split.streamed}),
                sampler=self._chunks,
                batch_size=None,  # each sampler item is a whole batch
                num_workers=workers,
                prefetch_factor=max(1, prefetch),
                pin_memory=self.pin,
                persistent_workers=True,
            )

    def batches(self, name: str, order: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(uint8 images on the CPU, their indices) for each ``batch_size`` chunk of ``order``."""
        chunks = list(order.split(batch_size))
        split = self.splits[name]
        if self._loader is not None and split.streamed:
            self._chunks.items = [(name, chunk) for chunk in chunks]
            for (images, error), chunk in zip(self._loader, chunks):
                if error is not None:
                    raise DataError(error)
                yield images, chunk
        else:
            yield from zip(self._ahead(split, chunks), chunks)

    def _ahead(self, split: Split, chunks: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        def fetch(index: torch.Tensor) -> torch.Tensor:
            images = split.fetch(index)
            return images.pin_memory() if self.pin else images

        if self.prefetch == 0:
            yield from map(fetch, chunks)
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = deque(pool.submit(fetch, chunk) for chunk in chunks[: self.prefetch])
            upcoming = iter(chunks[self.prefetch :])
            while pending:
                images = pending.popleft().result()
                following = next(upcoming, None)
                if following is not None:
                    pending.append(pool.submit(fetch, following))
                yield images
