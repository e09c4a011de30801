"""The hot loop's batch source for in-memory splits, and the batch order shared with streaming.

The batch at global step s is a pure function of (seed, s), so a resumed run sees exactly the
batches an uninterrupted one would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Union

import torch

from gentool.data.splits import PairSplit, Split
from gentool.errors import GentoolError
from gentool.options import not_one_of

BINARIZE_MODES = ("none", "dynamic", "static")
# Static binarisation draws from its own generator with this seed: the binarised data set is a
# fixed property of the data, the same for every run seed (as in the published binarised MNIST).
STATIC_BINARIZE_SEED = 20_240_601
# Spreads run seeds apart so (seed, epoch) pairs of nearby seeds never share a permutation.
_SEED_STRIDE = 1_000_003



class Batch(NamedTuple):
    """Examples (images, vectors or 2-D points) and their labels (None for unlabelled sets)."""

    x: torch.Tensor
    labels: torch.Tensor | None


class PairBatch(NamedTuple):
    """Image pairs for image-to-image translation: each input with its target, and labels
    (None for unlabelled sets)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    labels: torch.Tensor | None


AnyBatch = Union[Batch, PairBatch]


def examples_in(batch: AnyBatch) -> int:
    return batch[0].shape[0]


def _like(batch: tuple, parts) -> tuple:
    """`parts` as a batch of the type of `batch` (a Batch, a PairBatch or a plain tuple)."""
    return type(batch)(*parts) if hasattr(batch, "_fields") else tuple(parts)


def first_examples(batch: AnyBatch, n: int) -> AnyBatch:
    """The first n examples of a batch, of the same type."""
    return _like(batch, [None if part is None else part[:n] for part in batch])


def concatenated(batches: Sequence[AnyBatch]) -> AnyBatch:
    """Batches of one type joined into one, in order."""
    return _like(batches[0], [None if part[0] is None else torch.cat(part)
                              for part in zip(*batches)])


def check_binarize(binarize: str) -> None:
    if binarize not in BINARIZE_MODES:
        raise not_one_of("dataset.binarize", binarize, BINARIZE_MODES,
                         "set dataset.binarize=none.")


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    if batch_size < 1:
        raise GentoolError(f"the batch size is {batch_size} but must be at least 1; set "
                           "trainer.batch_size=128 or similar.")
    count = n // batch_size if drop_last else -(-n // batch_size)
    if count == 0:
        raise GentoolError(f"the batch size {batch_size} is larger than the {n} examples of the "
                           "split, so an epoch has no full batch; lower trainer.batch_size.")
    return count


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The example order of one epoch, on the CPU: seeded per (seed, epoch), or 0..n-1."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed * _SEED_STRIDE + epoch)
    return torch.randperm(n, generator=generator)


def shard_of(batch: torch.Tensor, shard: tuple[int, int]):
    """This process's contiguous part of a global batch of indices (rank, world_size)."""
    rank, world = shard
    if world == 1:
        return batch
    size = len(batch) // world
    return batch[rank * size:(rank + 1) * size]


def static_binarize(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 images with every pixel drawn once as 0 or 255, with probability intensity/255."""
    return torch.bernoulli(images.float() / 255.0, generator=generator).to(torch.uint8) * 255


def to_float(images: torch.Tensor, value_range: tuple[float, float], dynamic: bool) -> torch.Tensor:
    """uint8 images (on the device) as float32 in value_range, binarised afresh if dynamic.

    Dynamic draws use the global torch RNG of the device, so the engine's saved RNG state makes
    them resumable.
    """
    if images.is_floating_point():   # vectors: used as loaded (build_data refuses binarising)
        return images.to(torch.float32, copy=True)
    x = images.to(torch.float32).div_(255.0)
    if dynamic:
        x = torch.bernoulli(x)
    lo, hi = value_range
    if (lo, hi) != (0.0, 1.0):
        x = x.mul_(hi - lo).add_(lo)
    return x


class DeviceBatches:
    """In-memory split living on the training device as uint8; batches are index slices of a
    device-side permutation, converted to float on the device. No per-sample Python work."""

    def __init__(self, split: Split | PairSplit, batch_size: int, device, seed: int,
                 value_range=(0.0, 1.0), binarize: str = "none", shuffle: bool = True,
                 drop_last: bool = True, shard: tuple[int, int] = (0, 1)):
        check_binarize(binarize)
        self.device = torch.device(device)
        # Data-parallel training: every process walks the same global batches (batch_size is
        # the global size) and trains on its own slice of each.
        self.shard = shard
        # A pair split keeps inputs and targets side by side; batches of it are PairBatches.
        self.pairs = isinstance(split, PairSplit)
        parts = [split.inputs, split.targets] if self.pairs else [split.images]
        if binarize == "static":
            parts = [static_binarize(part, torch.Generator().manual_seed(STATIC_BINARIZE_SEED))
                     for part in parts]
        self.parts = [part.to(self.device) for part in parts]
        self.labels = None if split.labels is None else split.labels.to(self.device)
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self.dynamic = binarize == "dynamic"
        self.num_examples = len(parts[0])
        self._per_epoch = batches_per_epoch(self.num_examples, batch_size, drop_last)

    def __len__(self) -> int:
        """Batches per epoch of iter_batches."""
        return self._per_epoch

    def iter_batches(self, start_step: int = 0) -> Iterator[AnyBatch]:
        """Endless (x, y) batches from global step start_step on, exactly as from step 0."""
        epoch, first = divmod(start_step, self._per_epoch)
        while True:
            order = epoch_order(self.num_examples, self.seed, epoch, self.shuffle).to(self.device)
            for b in range(first, self._per_epoch):
                yield self._batch(shard_of(order[b * self.batch_size:(b + 1) * self.batch_size],
                                           self.shard))
            epoch, first = epoch + 1, 0

    def epoch(self) -> Iterator[AnyBatch]:
        """One pass over every example once, in stored order, last batch possibly smaller."""
        for start in range(0, self.num_examples, self.batch_size):
            yield self._batch(slice(start, start + self.batch_size))

    def _batch(self, index) -> AnyBatch:
        floats = [to_float(part[index], self.value_range, self.dynamic) for part in self.parts]
        labels = None if self.labels is None else self.labels[index]
        return PairBatch(*floats, labels) if self.pairs else Batch(floats[0], labels)
