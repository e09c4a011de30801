"""Any tree of image files (CelebA, a photo folder, ...), read lazily: too big to hold in memory.

`load_folder` only lists the files and splits them; the images are decoded, centre-cropped and
resized by DataLoader workers as batches are drawn (see streaming.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gentool.data.splits import split_indices
from gentool.errors import GentoolError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


class ImageFiles(torch.utils.data.Dataset):
    """Image files as uint8 [C, H, W] tensors, centre-cropped to the target aspect and resized."""

    def __init__(self, files: list[Path], size: tuple[int, int], channels: int):
        self.files, self.size, self.channels = files, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.channels == 1 else "RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise GentoolError(f"Could not read the image {path} ({error}); remove or replace "
                               "it.") from error
        pixels = np.asarray(_crop_resize(image, *self.size))
        tensor = torch.from_numpy(pixels.copy())
        return tensor.unsqueeze(0) if self.channels == 1 else tensor.permute(2, 0, 1).contiguous()


@dataclass
class FolderData:
    """What load_folder returns; build_data turns it into StreamingBatches."""

    train: ImageFiles
    test: ImageFiles
    shape: tuple[int, int, int]     # (C, H, W)
    num_classes: None = None
    class_names: None = None


def image_files(root: Path) -> list[Path]:
    """Every image file under `root` (recursively, by extension), sorted by path."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def load_folder(data_dir: str, path: str, size=(64, 64), channels: int = 3,
                test_fraction: float = 0.05, split_seed: int = 0) -> FolderData:
    """Every .png/.jpg/.jpeg/.bmp/.webp under `path` (recursively), split with a fixed seed.

    `path` is relative to the current directory (`~` is expanded), like data_dir; `data_dir`
    itself is unused. `size` is [height, width] or one number for a square.
    """
    root = Path(os.path.expanduser(str(path)))
    if not root.is_dir():
        raise GentoolError(f"The image folder {root.absolute()} does not exist; set "
                           "dataset.source.path= to a folder of images.")
    files = image_files(root)
    if not files:
        raise GentoolError(f"{root.absolute()} holds no {'/'.join(EXTENSIONS)} images; set "
                           "dataset.source.path= to a folder that has some.")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if min(height, width) < 1:
        raise GentoolError(f"The image size {[height, width]} must be positive; set "
                           "dataset.shape=[3,64,64] or similar.")
    if channels not in (1, 3):
        raise GentoolError(f"An image folder can be read with 1 (grayscale) or 3 (RGB) channels, "
                           f"not {channels}; set dataset.shape=[3,{height},{width}].")
    train, test = split_indices(len(files), test_fraction, split_seed)
    return FolderData(ImageFiles([files[i] for i in train], (height, width), channels),
                      ImageFiles([files[i] for i in test], (height, width), channels),
                      (channels, height, width))


def _crop_resize(image: Image.Image, height: int, width: int) -> Image.Image:
    """The largest centred box of the target's aspect ratio (a square for square sizes), resized."""
    w, h = image.size
    if w * height > h * width:      # wider than the target: trim left and right
        box_w, box_h = round(h * width / height), h
    else:                           # taller: trim top and bottom
        box_w, box_h = w, round(w * height / width)
    left, top = (w - box_w) // 2, (h - box_h) // 2
    # Crop first: resize(box=...) would let the filter read pixels outside the box.
    image = image.crop((left, top, left + box_w, top + box_h))
    return image.resize((width, height), Image.BICUBIC)
