"""Paired images for image-to-image translation (pix2pix).

Each split is a PairSplit (inputs, targets, labels) of uint8 images, and its batches are
PairBatches (data/batching.py): the translation method reads the two sides by name.

- `load_paired_folder`: the A|B side-by-side files of the public pix2pix sets (facades, maps,
  edges2shoes), each file one pair, `direction` AtoB or BtoA.
- `derive_pairs`: pairs made offline from any image set by a transform (dataset/pair/*.yaml):
  `edges` (an edge map -> the image), `colorize` (grey -> colour, on a colour set) and
  `inpaint` (the image with a hole -> whole).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gentool.data.folder import ImageFiles, folder_refusal, image_files
from gentool.data.splits import ImageData, PairSplit, Split, split_indices
from gentool.errors import GentoolError

INPAINT_SEED = 20_240_607   # the holes are part of the derived data set: the same every run

# A transform: uint8 images [N, C, H, W] and the index of the first one in the source data set
# -> the uint8 inputs paired with them.
PairTransform = Callable[[torch.Tensor, int], torch.Tensor]


def grey(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of uint8 [N, 3, H, W] (or the image itself if grey), float [N, 1, H, W]."""
    x = images.float()
    if x.shape[1] == 1:
        return x
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def edge_map(images: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """Sobel edges of uint8 images: 255 where the gradient magnitude exceeds `threshold` times
    the image's largest, else 0. uint8 [N, 1, H, W]."""
    sobel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)          # [2, 1, 3, 3]
    gradients = F.conv2d(F.pad(grey(images), (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = gradients.pow(2).sum(dim=1, keepdim=True).sqrt()
    peak = magnitude.flatten(1).amax(dim=1).clamp(min=1e-6).view(-1, 1, 1, 1)
    return ((magnitude > threshold * peak).to(torch.uint8)) * 255


def with_hole(images: torch.Tensor, first_index: int = 0) -> torch.Tensor:
    """The images with a square hole (half the side, filled with 0) at a position drawn per
    image from a fixed seed and the image's index."""
    n, _, h, w = images.shape
    side_h, side_w = h // 2, w // 2
    out = images.clone()
    for i in range(n):
        generator = torch.Generator().manual_seed(INPAINT_SEED + first_index + i)
        top = int(torch.randint(0, h - side_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, w - side_w + 1, (1,), generator=generator))
        out[i, :, top:top + side_h, left:left + side_w] = 0
    return out


def edges(images: torch.Tensor, first_index: int = 0) -> torch.Tensor:
    """Pair transform `edges`: the Sobel edge map of each image."""
    return edge_map(images)


def colorize(images: torch.Tensor, first_index: int = 0) -> torch.Tensor:
    """Pair transform `colorize`: the grey version of each colour image."""
    if images.shape[1] != 3:
        raise GentoolError(f"dataset/pair=colorize needs a colour data set, and the source has "
                           f"{images.shape[1]} channel(s); use dataset@dataset.source=cifar10 or "
                           "another pair.")
    return grey(images).round().clamp(0, 255).to(torch.uint8)


def inpaint(images: torch.Tensor, first_index: int = 0) -> torch.Tensor:
    """Pair transform `inpaint`: each image with a square hole."""
    return with_hole(images, first_index)


def derive_pairs(data: ImageData, transform: PairTransform) -> ImageData:
    """Pairs (transform(image), image) of every image of `data`, labels kept."""
    def split(source: Split, first_index: int) -> PairSplit:
        return PairSplit(transform(source.images, first_index), source.images, source.labels)

    train = split(data.train, 0)
    test = split(data.test, len(data.train.images))
    shape = (train.inputs.shape[1] + train.targets.shape[1], *data.shape[1:])
    return ImageData(train, test, shape, data.num_classes, data.class_names)


def load_paired_folder(data_dir: str, path: str, size, channels: int = 3,
                       direction: str = "AtoB", test_fraction: float = 0.1,
                       split_seed: int = 0) -> ImageData:
    """Every image under `path` is one pair, A on the left half and B on the right; each half is
    resized to `size` [height, width]. A `test/` (or `val/`) subfolder, when present, is the test
    split; otherwise a seeded `test_fraction` of the files is held out."""
    if direction not in ("AtoB", "BtoA"):
        raise GentoolError(f"dataset.source.direction={direction} must be AtoB or BtoA.")
    root = Path(path).expanduser()
    refusal = folder_refusal(root, f"No folder at {root}", "give the pix2pix folder with "
                             "dataset.source.path=<folder of A|B images>.")
    if refusal is not None:
        raise refusal
    files = image_files(root)
    if not files:
        raise GentoolError(f"no images under {root}; paired_folder reads .png/.jpg files that "
                           "hold input and target side by side.")
    held_out = [p for p in files if {"test", "val"} & set(p.relative_to(root).parts[:-1])]
    height, width = int(size[0]), int(size[1])

    def load(paths) -> PairSplit:
        sides = ([], [])
        for image in ImageFiles(paths, (height, 2 * width), channels):   # A|B: twice as wide
            a, b = image[:, :, :width], image[:, :, width:]
            inputs, targets = (a, b) if direction == "AtoB" else (b, a)
            sides[0].append(inputs)
            sides[1].append(targets)
        return PairSplit(torch.stack(sides[0]), torch.stack(sides[1]), None)

    if held_out:
        train_files = [p for p in files if p not in held_out]
        test_files = held_out
    else:
        train_index, test_index = split_indices(len(files), test_fraction, split_seed)
        train_files = [files[i] for i in train_index]
        test_files = [files[i] for i in test_index]
    return ImageData(load(train_files), load(test_files), (2 * channels, height, width), None)
