"""The data a run draws: training pairs in a fixed order that any step can be resumed from.

Every process reads the same endless stream of positions. Position ``p`` of rank ``r``
maps to epoch ``p // shard`` and to the image that
:class:`torch.utils.data.DistributedSampler` (shuffled with the run's seed, that
epoch) gives rank ``r`` at ``p % shard``. So:

- the ranks of a ``torchrun`` job see disjoint shards of each epoch, as with a plain
  ``DistributedSampler``;
- step ``s`` always draws positions ``s * batch .. (s + 1) * batch - 1``, so a resumed
  run reads exactly what an uninterrupted one would, even mid-epoch;
- a batch may run across an epoch boundary, so folders smaller than a batch still train.

Crops, flips and degradations are seeded by ``(seed, epoch, index)`` inside the
datasets, so worker processes do not change them either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lossnet.errors import InputError


class StepStream(Dataset):
    """Map stream positions to ``dataset`` items (see the module docstring).

    Args:
        dataset: a dataset with ``set_epoch`` (e.g. :class:`~lossnet.data.tasks.PairDataset`).
        seed: the shuffling seed.
        rank, world_size: this process's place in a ``torchrun`` job (0 and 1 otherwise).

    >>> class Numbers(torch.utils.data.Dataset):
    ...     def __len__(self): return 5
    ...     def __getitem__(self, i): return i
    ...     def set_epoch(self, e): pass
    >>> s = StepStream(Numbers(), seed=0)
    >>> sorted(s[p] for p in range(5)) == list(range(5))  # one epoch: each item once
    True
    """

    def __init__(self, dataset: Any, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if len(dataset) == 0:
            raise InputError("the training dataset is empty")
        self.dataset = dataset
        self.sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.shard = len(self.sampler)
        self._order: dict[int, list[int]] = {}

    def index(self, position: int) -> tuple[int, int]:
        """``(epoch, dataset index)`` at a stream position."""
        epoch, offset = divmod(position, self.shard)
        if epoch not in self._order:
            self.sampler.set_epoch(epoch)
            self._order = {epoch: list(self.sampler)}  # keep one epoch: the stream only moves forward
        return epoch, self._order[epoch][offset]

    def __len__(self) -> int:
        return 2**62  # endless; a sampler picks the positions

    def __getitem__(self, position: int) -> Any:
        epoch, index = self.index(position)
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


class PositionRange(torch.utils.data.Sampler[int]):
    """Positions ``start .. stop - 1`` in order (the steps still to run, times the batch size)."""

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __iter__(self):  # noqa: ANN204
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


def step_batches(
    stream: StepStream,
    batch_size: int,
    start: int,
    stop: int,
    num_workers: int,
    device: torch.device,
    memory_format: torch.memory_format,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of steps ``start + 1 .. stop`` from ``stream``, on ``device`` in ``memory_format``: ``(x, y)``,
    or ``(x, y, index)`` for a stream of conditioned pairs (the index ``(B,)`` as it is)."""
    loader = DataLoader(
        stream,
        batch_size=batch_size,
        sampler=PositionRange(start * batch_size, stop * batch_size),
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    for batch in loader:
        yield tuple(
            t.to(device, non_blocking=True, memory_format=memory_format) if t.ndim == 4 else t.to(device)
            for t in batch
        )
