"""Batches streamed from disk by DataLoader workers, in the same seeded order as DeviceBatches."""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from gentool.data.batching import (STATIC_BINARIZE_SEED, Batch, batches_per_epoch,
                                   check_binarize, epoch_order, shard_of, static_binarize,
                                   to_float)
from gentool.errors import GentoolError


class StreamingBatches:
    """A Dataset of uint8 [C, H, W] images, batched by a DataLoader and moved to the device.

    The batch at global step s is the same function of (seed, s) as for DeviceBatches, so resume
    is exact. One iteration (iter_batches or epoch) at a time per object: each reuses its own
    persistent workers.
    """

    def __init__(self, dataset: Dataset, batch_size: int, device, seed: int,
                 value_range=(0.0, 1.0), binarize: str = "none", shuffle: bool = True,
                 drop_last: bool = True, num_workers: int | None = None,
                 shard: tuple[int, int] = (0, 1)):
        check_binarize(binarize)
        self.shard = shard   # (rank, world size): see DeviceBatches
        self.dataset = _StaticBinarized(dataset) if binarize == "static" else dataset
        self.device = torch.device(device)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.dynamic = binarize == "dynamic"
        self.num_examples = len(dataset)
        self.num_workers = min(4, os.cpu_count() or 1) if num_workers is None else num_workers
        self._per_epoch = batches_per_epoch(self.num_examples, batch_size, drop_last)
        self._loaders: dict[str, tuple[DataLoader, _PlannedBatches]] = {}

    def __len__(self) -> int:
        """Batches per epoch of iter_batches."""
        return self._per_epoch

    def iter_batches(self, start_step: int = 0) -> Iterator[Batch]:
        """Endless (x, y) batches from global step start_step on, exactly as from step 0."""
        epoch, first = divmod(start_step, self._per_epoch)
        while True:
            order = epoch_order(self.num_examples, self.seed, epoch, self.shuffle)
            size = self.batch_size
            yield from self._stream("train", [
                shard_of(order[b * size:(b + 1) * size], self.shard).tolist()
                for b in range(first, self._per_epoch)])
            epoch, first = epoch + 1, 0

    def epoch(self) -> Iterator[Batch]:
        """One pass over every example once, in stored order, last batch possibly smaller."""
        indices = list(range(self.num_examples))
        yield from self._stream("eval", [indices[start:start + self.batch_size]
                                         for start in range(0, self.num_examples, self.batch_size)])

    def _stream(self, purpose: str, batches: list[list[int]]) -> Iterator[Batch]:
        # The loader reads its batch sampler in this process when iterated, so setting the plan
        # first makes the workers load exactly these batches, in this order.
        if purpose not in self._loaders:
            sampler = _PlannedBatches()
            loader = DataLoader(self.dataset, batch_sampler=sampler,
                                num_workers=self.num_workers,
                                pin_memory=self.device.type == "cuda",
                                persistent_workers=self.num_workers > 0)
            self._loaders[purpose] = loader, sampler
        loader, sampler = self._loaders[purpose]
        sampler.batches = batches
        try:
            for images in loader:
                images = images.to(self.device, non_blocking=True)
                yield Batch(to_float(images, self.value_range, self.dynamic), None)
        except GentoolError as error:
            raise type(error)(worker_message(error)) from None


def worker_message(error: GentoolError) -> str:
    """The message a GentoolError had in a DataLoader worker. The DataLoader re-raises it in
    this process as the same type around the worker's whole traceback text, whose last line is
    `module.Type: message`; a message raised here is returned unchanged."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    prefix = f"{type(error).__module__}.{type(error).__qualname__}: "
    lines = text.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    return "\n".join([lines[starts[-1]][len(prefix):], *lines[starts[-1] + 1:]]) if starts else \
        lines[-1]


class _PlannedBatches:
    """Batch sampler that yields the index lists it was last given."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


class _StaticBinarized(Dataset):
    """Each image binarised by a generator seeded from its index: the same 0/255 image always."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(STATIC_BINARIZE_SEED + index)
        return static_binarize(self.dataset[index], generator)
