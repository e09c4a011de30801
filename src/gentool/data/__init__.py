"""Data sets: a dataset config node becomes train and test batch sources on the device.

In-memory sources (digits, mnist, fashion_mnist, cifar10, frey_faces) return an ImageData whose
uint8 splits move to the device once (DeviceBatches); `folder` returns a FolderData whose files
stream through DataLoader workers (StreamingBatches); the toy 2-D sets (ring, grid) return a
PointData whose points are drawn on the device (PointBatches); vectors (vectors, text_folder,
newsgroups20) return a VectorData whose float32 [N, D] splits move to the device once.

`dataset.validation=N` holds N train examples out as a validation split, chosen by a seed of its
own (data.splits.VALIDATION_SEED), so every run of a data set shares it. The toy sets, whose
training points are fresh draws, get a fixed validation draw of N points instead (like their
test set, with another seed). Streamed folders have no validation split.

Evaluation splits (test, validation) of `binarize: dynamic` data are binarised once, with a
fixed seed (batching.STATIC_BINARIZE_SEED), as the likelihood literature evaluates dynamically
binarised MNIST: every evaluation and every run then scores the same binary images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from numbers import Real

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from gentool.config import instantiate
from gentool.data.batching import (AnyBatch, Batch, DeviceBatches, PairBatch, check_binarize,
                                   concatenated, examples_in, first_examples)
from gentool.data.folder import FolderData
from gentool.data.splits import ImageData, Split, hold_out
from gentool.data.streaming import StreamingBatches
from gentool.data.toy2d import VALIDATION_SET_SEED, PointBatches, PointData
from gentool.data.vectors import VectorData, check_values
from gentool.errors import GentoolError
from gentool.metrics.modes import mode_metrics

__all__ = ["AnyBatch", "Batch", "Data", "DeviceBatches", "PairBatch", "FolderData", "ImageData", "PointBatches", "PointData", "Split",
           "StreamingBatches", "VectorData", "build_data"]


@dataclass
class Data:
    train: DeviceBatches | StreamingBatches | PointBatches
    test: DeviceBatches | StreamingBatches | PointBatches   # every example once, for evaluation
    shape: tuple[int, ...]          # (C, H, W) for images, (2,) for points
    num_classes: int | None
    value_range: tuple[float, float]
    name: str
    # Scores a batch of generated samples (the engine passes 2,500): mode_metrics for the toy 2-D
    # sets, whose true distribution is known; None for images.
    sample_metrics: Callable[[torch.Tensor], dict[str, float]] | None = None
    # The held-out validation split (dataset.validation), evaluated like `test`; None without.
    validation: DeviceBatches | PointBatches | None = None
    # "images" ([C, H, W]), "points" (the toy 2-D sets) or "vectors" ([D] from files)
    kind: str = "images"
    class_names: list[str] | None = None


def build_data(dataset_cfg, data_dir: str, device, batch_size: int, seed: int,
               num_workers: int | None = None, shard: tuple[int, int] = (0, 1),
               drop_last: bool = True) -> Data:
    """Load the data set a `dataset/` config describes and build its train and test batchers.

    `data_dir` may be relative (to the current directory) or start with `~`. `num_workers` sets
    the DataLoader workers of streaming sources (default: up to 4). `shard` = (rank, world size)
    of data-parallel training: the train batches are this process's slice of each global batch
    of `batch_size` (the test split stays whole: rank 0 evaluates). `drop_last=False` lets a
    train split smaller than one batch load (for reading it whole, e.g. by `gentool eval`).
    """
    if not isinstance(dataset_cfg, DictConfig):
        dataset_cfg = OmegaConf.create(dataset_cfg)
    name = str(dataset_cfg.name)
    missing = sorted(OmegaConf.missing_keys(dataset_cfg))
    if missing:
        raise GentoolError(f"the dataset '{name}' needs {', '.join(missing)}; give it on the "
                           f"command line, e.g. {missing[0]}=...")
    value_range = _check_range(dataset_cfg.range)
    binarize = str(dataset_cfg.binarize)
    check_binarize(binarize)
    validation = _validation_size(dataset_cfg.get("validation", 0))
    loaded = _load(dataset_cfg, os.path.abspath(os.path.expanduser(str(data_dir))))
    _check_matches(name, dataset_cfg, loaded)
    if isinstance(loaded, PointData):
        return _point_data(name, loaded, binarize, device, batch_size, value_range, shard,
                           validation)
    if isinstance(loaded, FolderData) and validation:
        source = dataset_cfg.get("source") or {}
        raise GentoolError(f"dataset.validation is {validation} but {name} streams its images "
                           "from files, which gentool does not split further; set "
                           "dataset.validation=0 (its held-out split is the share "
                           f"dataset.source.test_fraction={source.get('test_fraction')} of the "
                           "images, drawn with dataset.source.split_seed).")
    if isinstance(loaded, VectorData):
        _check_vectors(name, dataset_cfg, loaded, binarize)

    def batches(split, shuffle: bool):
        # Training batches are full and shuffled; evaluation sees every example once, in order,
        # with dynamically binarised data binarised once (the same images at every evaluation).
        options = dict(batch_size=batch_size, device=device, seed=seed, value_range=value_range,
                       binarize=binarize if shuffle or binarize != "dynamic" else "static",
                       shuffle=shuffle, drop_last=shuffle and drop_last,
                       shard=shard if shuffle else (0, 1))
        if isinstance(loaded, FolderData):
            return StreamingBatches(split, num_workers=num_workers, **options)
        return DeviceBatches(split, **options)

    train, held = hold_out(loaded.train, validation) if validation else (loaded.train, None)
    kind = "vectors" if isinstance(loaded, VectorData) else "images"
    return Data(batches(train, True), batches(loaded.test, False), tuple(loaded.shape),
                loaded.num_classes, value_range, name,
                validation=None if held is None else batches(held, False), kind=kind,
                class_names=getattr(loaded, "class_names", None))


def _validation_size(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GentoolError(f"dataset.validation is {value} but must be a whole number of "
                           "examples >= 0; e.g. dataset.validation=10000 (0: no validation "
                           "split).")
    return value


def _check_vectors(name: str, dataset_cfg, loaded: VectorData, binarize: str) -> None:
    # Vectors are used as loaded (after the source's own scaling): `range` does not rescale them.
    if binarize != "none":
        raise GentoolError(f"dataset.binarize is '{binarize}' but {name} holds vectors, which "
                           "are used as loaded; set dataset.binarize=none (and give binary "
                           "data with dataset.values=binary).")
    values = str(dataset_cfg.get("values", "real"))
    for split, part in (("the train split", loaded.train), ("the test split", loaded.test)):
        check_values(part.images, values, f"{name}'s {split}")


def _point_data(name: str, loaded: PointData, binarize: str, device, batch_size: int,
                value_range: tuple[float, float], shard: tuple[int, int],
                validation: int) -> Data:
    # Points are used as drawn: `range` is only their plotting box, and binarising means nothing.
    if binarize != "none":
        raise GentoolError(f"dataset.binarize is '{binarize}' but {name} holds 2-D points, which "
                           "cannot be binarised; set dataset.binarize=none.")
    # Fresh draws: each process draws its share from its own RNG stream.
    train = PointBatches(loaded, batch_size // shard[1], device, fixed_test=False)
    test = PointBatches(loaded, batch_size, device, fixed_test=True)
    # Training never sees a stored point, so the validation set is one more fixed draw.
    held = None if not validation else PointBatches(
        loaded, batch_size, device, fixed_test=True, examples=validation,
        draw_seed=VALIDATION_SET_SEED)
    metrics = partial(mode_metrics, centres=loaded.centres, sigma=loaded.sigma)
    return Data(train, test, tuple(loaded.shape), loaded.num_classes, value_range, name,
                sample_metrics=metrics, validation=held, kind="points")


def _load(dataset_cfg, data_dir: str):
    """The source's loader builds the data set; a derived data set (derived_pairs) instead holds
    another data set's config as its `source` and a `pair` transform of what that one loads."""
    if "pair" in dataset_cfg:
        from gentool.data.pairs import derive_pairs

        origin = instantiate(dataset_cfg.source.source, data_dir=data_dir)
        return derive_pairs(origin, instantiate(dataset_cfg.pair.transform))
    return instantiate(dataset_cfg.source, data_dir=data_dir)


def _check_range(value) -> tuple[float, float]:
    pair = list(value) if isinstance(value, (list, tuple, ListConfig)) else []
    if len(pair) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in pair) \
            or not pair[0] < pair[1]:
        raise GentoolError(f"dataset.range is {value} but must be two numbers [lo, hi] with "
                           "lo < hi; set dataset.range=[0.0,1.0] (or [-1.0,1.0] for tanh outputs).")
    return float(pair[0]), float(pair[1])


def _check_matches(name: str, dataset_cfg,
                   loaded: ImageData | FolderData | PointData | VectorData) -> None:
    shape = [int(v) for v in loaded.shape]
    if [int(v) for v in dataset_cfg.shape] != shape:
        what = "vectors" if isinstance(loaded, VectorData) else "images"
        raise GentoolError(f"dataset.shape is {list(dataset_cfg.shape)} but {name} holds {what} "
                           f"of shape {shape}; set dataset.shape=[{','.join(map(str, shape))}] "
                           "(or pick the dataset config that matches).")
    if dataset_cfg.num_classes != loaded.num_classes:
        wanted = "null" if loaded.num_classes is None else loaded.num_classes
        if loaded.num_classes == 1:
            held = "1 class"
        else:
            held = f"{loaded.num_classes or 'no'} classes"
        raise GentoolError(f"dataset.num_classes is {dataset_cfg.num_classes} but {name} has "
                           f"{held}; set dataset.num_classes={wanted}.")


def take(batches: DeviceBatches | StreamingBatches | PointBatches, n: int) -> AnyBatch:
    """The first n examples of a split in its stored order, as one batch (a Batch, or a
    PairBatch for pairs).

    Drawn in a forked RNG: dynamic binarisation would otherwise consume the training RNG, and a
    run that takes pictures after resuming would then diverge from an uninterrupted one.
    """
    devices = [batches.device] if batches.device.type == "cuda" else []
    parts, count = [], 0
    with torch.random.fork_rng(devices=devices):
        for batch in batches.epoch():
            parts.append(batch if isinstance(batch, PairBatch) else Batch(*batch))
            count += examples_in(batch)
            if count >= n:
                break
    return first_examples(concatenated(parts), n)
