"""Paired images for image-to-image translation (pix2pix), stored as one image per pair.

A pair is kept as the input's channels followed by the target's, [C_in + C_out, H, W] uint8, so
pairs ride on the same device-side batching as any image set; the translation method splits
them (`input_channels`).

- `load_paired_folder`: the A|B side-by-side files of the public pix2pix sets (facades, maps,
  edges2shoes), each file one pair, `direction` AtoB or BtoA.
- `derive_pairs`: pairs made offline from any image set: `edges` (an edge map -> the image),
  `colorize` (grey -> colour, on a colour set) and `inpaint` (the image with a hole -> whole).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from gentool.data.folder import ImageFiles, image_files
from gentool.data.splits import ImageData, Split, split_indices
from gentool.errors import GentoolError

PAIRS = ("edges", "colorize", "inpaint")
INPAINT_SEED = 20_240_607   # the holes are part of the derived data set: the same every run


def pair_layout(source: str, pair: str, field: str):
    """`shape`, `input_channels` or `num_classes` of the pairs derived from dataset `source`
    (an OmegaConf resolver, so dataset/derived_pairs.yaml follows dataset.source/pair)."""
    node = source_config(source)
    channels, height, width = (int(v) for v in node.shape)
    check_pair(pair, channels, source)
    inputs = 1 if pair in ("edges", "colorize") else channels
    return {"shape": [inputs + channels, height, width], "input_channels": inputs,
            "num_classes": node.num_classes}[field]


def source_config(source: str):
    path = resources.files("gentool.configs") / "dataset" / f"{source}.yaml"
    if not path.is_file() or source == "derived_pairs":
        raise GentoolError(f"dataset.source={source} is not a gentool image data set; use e.g. "
                           "dataset.source=fashion_mnist or dataset.source=cifar10.")
    return OmegaConf.load(str(path))


def check_pair(pair: str, channels: int, source: str) -> None:
    if pair not in PAIRS:
        raise GentoolError(f"dataset.pair={pair} is not one of {', '.join(PAIRS)}; pick one.")
    if pair == "colorize" and channels != 3:
        raise GentoolError(f"dataset.pair=colorize needs a colour data set and {source} has "
                           f"{channels} channel(s); use dataset.source=cifar10 or another pair.")


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


def derive_pairs(data: ImageData, pair: str, source: str) -> ImageData:
    check_pair(pair, data.shape[0], source)

    def split(images: torch.Tensor, labels, first_index: int) -> Split:
        if pair == "edges":
            inputs = edge_map(images)
        elif pair == "colorize":
            inputs = grey(images).round().clamp(0, 255).to(torch.uint8)
        else:
            inputs = with_hole(images, first_index)
        return Split(torch.cat([inputs, images], dim=1), labels)

    shape = (int(pair_layout(source, pair, "shape")[0]), *data.shape[1:])
    return ImageData(split(data.train.images, data.train.labels, 0),
                     split(data.test.images, data.test.labels, len(data.train.images)),
                     shape, data.num_classes, data.class_names)


def load_paired_folder(data_dir: str, path: str, size, channels: int = 3,
                       direction: str = "AtoB", test_fraction: float = 0.1,
                       split_seed: int = 0) -> ImageData:
    """Every image under `path` is one pair, A on the left half and B on the right; each half is
    resized to `size` [height, width]. A `test/` (or `val/`) subfolder, when present, is the test
    split; otherwise a seeded `test_fraction` of the files is held out."""
    if direction not in ("AtoB", "BtoA"):
        raise GentoolError(f"dataset.source.direction={direction} must be AtoB or BtoA.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise GentoolError(f"No folder at {root}; give the pix2pix folder with "
                           "dataset.source.path=<folder of A|B images>.")
    files = image_files(root)
    if not files:
        raise GentoolError(f"No images under {root}; paired_folder reads .png/.jpg files that "
                           "hold input and target side by side.")
    held_out = [p for p in files if {"test", "val"} & set(p.relative_to(root).parts[:-1])]
    height, width = int(size[0]), int(size[1])

    def load(paths) -> torch.Tensor:
        pairs = []
        for image in ImageFiles(paths, (height, 2 * width), channels):   # A|B: twice as wide
            a, b = image[:, :, :width], image[:, :, width:]
            pairs.append(torch.cat([a, b] if direction == "AtoB" else [b, a]))
        return torch.stack(pairs)

    if held_out:
        train_files = [p for p in files if p not in held_out]
        test_files = held_out
    else:
        train_index, test_index = split_indices(len(files), test_fraction, split_seed)
        train_files = [files[i] for i in train_index]
        test_files = [files[i] for i in test_index]
    return ImageData(Split(load(train_files), None), Split(load(test_files), None),
                     (2 * channels, height, width), None)
