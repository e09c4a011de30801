"""The in-memory form every non-streaming source returns, and the seeded train/test split."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gentool.errors import GentoolError


@dataclass
class Split:
    """One in-memory split, as loaded from disk."""

    images: torch.Tensor            # uint8 [N, C, H, W], values 0..255; float32 [N, D] vectors
    labels: torch.Tensor | None     # int64 [N], or None for unlabelled sets


@dataclass
class PairSplit:
    """One in-memory split of image pairs (image-to-image translation)."""

    inputs: torch.Tensor            # uint8 [N, C_in, H, W]
    targets: torch.Tensor           # uint8 [N, C_out, H, W]
    labels: torch.Tensor | None     # int64 [N], or None for unlabelled sets


@dataclass
class ImageData:
    """What every in-memory source function returns."""

    train: Split | PairSplit
    test: Split | PairSplit
    # (C, H, W); for pairs, the input's channels followed by the target's: (C_in + C_out, H, W)
    shape: tuple[int, int, int]
    num_classes: int | None
    class_names: list[str] | None = None


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices of a fixed seeded split of n examples, each in ascending order.

    Used by sources that ship without an official test split; the same (n, fraction, seed)
    always gives the same split, so evaluations stay comparable across runs.
    """
    if not 0.0 < test_fraction < 1.0:
        raise GentoolError(f"test_fraction is {test_fraction} but must lie strictly between 0 "
                           "and 1; set dataset.source.test_fraction=0.1 or similar.")
    if n < 2:
        raise GentoolError(f"only {n} example(s) found, too few for a train and a test split; "
                           "add more data.")
    # At least one example on each side, so tiny data sets still split.
    n_test = min(n - 1, max(1, round(n * test_fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_test:].sort().values, order[:n_test].sort().values


def take(images: torch.Tensor, labels: torch.Tensor | None, index: torch.Tensor) -> Split:
    """The Split holding the examples at `index`."""
    return Split(images[index], None if labels is None else labels[index])


# The validation split is drawn with this seed alone (never the run seed): it is a fixed property
# of the data set, so every run of a data set holds out the same examples and runs compare.
VALIDATION_SEED = 20_240_603


def hold_out(split: Split | PairSplit, n: int) -> tuple[Split | PairSplit, Split | PairSplit]:
    """(train, validation): `n` examples of `split` chosen by a permutation seeded with
    VALIDATION_SEED, the rest kept for training; both in the stored order."""
    total = len(split.labels) if split.labels is not None else len(
        split.inputs if isinstance(split, PairSplit) else split.images)
    if n >= total:
        raise GentoolError(f"dataset.validation is {n} but the train split holds only {total} "
                           "examples; hold out fewer (e.g. dataset.validation="
                           f"{max(1, total // 10)}).")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    kept, held = order[n:].sort().values, order[:n].sort().values

    def part(index: torch.Tensor) -> Split | PairSplit:
        labels = None if split.labels is None else split.labels[index]
        if isinstance(split, PairSplit):
            return PairSplit(split.inputs[index], split.targets[index], labels)
        return Split(split.images[index], labels)

    return part(kept), part(held)
