"""Any tree of image files (CelebA, a photo folder, ...), read lazily: too big to hold in memory.

`load_folder` lists the files, skips those that are not readable images (each named in one
warning line) and splits the rest; the images are decoded, centre-cropped and resized by
DataLoader workers as batches are drawn (see streaming.py).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from gentool.data.splits import split_indices
from gentool.errors import GentoolError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

log = logging.getLogger("gentool")


class ImageFiles(torch.utils.data.Dataset):
    """Image files as uint8 [C, H, W] tensors, centre-cropped to the target aspect and resized.

    With `skip_unreadable`, a file whose pixels cannot be decoded (a truncated download that
    passed load_folder's header check) is named in one warning line and replaced by the next
    file that decodes, so batches keep their size and the order stays a function of the step.
    """

    def __init__(self, files: list[Path], size: tuple[int, int], channels: int,
                 skip_unreadable: bool = False):
        self.files, self.size, self.channels = files, size, channels
        self.skip_unreadable = skip_unreadable
        self._warned: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not self.skip_unreadable:
            return self._read(self.files[index])
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            try:
                return self._read(path)
            except GentoolError as error:
                if path not in self._warned:
                    self._warned.add(path)
                    log.warning("Skipping %s: %s", path, error.__cause__)
        raise GentoolError(f"none of the {len(self.files)} images of this split can be decoded "
                           f"(e.g. {self.files[index]}); replace them with readable .png/.jpg "
                           "files.")

    def _read(self, path: Path) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.channels == 1 else "RGB")
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise GentoolError(f"could not read the image {path} ({error}); remove or replace "
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


def readable_images(files: list[Path]) -> list[Path]:
    """The files whose header PIL reads as an image; each other one is named in a warning line,
    and their number is logged. Headers only: decoding every pixel would read the whole set."""
    def problem(path: Path) -> str | None:
        try:
            with Image.open(path) as image:
                width, height = image.size
            return None if width > 0 and height > 0 else "it has no pixels"
        except (OSError, UnidentifiedImageError, ValueError) as error:
            return str(error) or type(error).__name__

    with ThreadPoolExecutor(max_workers=8) as pool:   # file opens wait on the disk, not the CPU
        problems = list(pool.map(problem, files))
    for path, reason in zip(files, problems):
        if reason is not None:
            log.warning("Skipping %s: not a readable image (%s)", path, reason)
    readable = [path for path, reason in zip(files, problems) if reason is None]
    if len(readable) < len(files):
        log.warning("Skipped %d of %d image files that could not be read",
                    len(files) - len(readable), len(files))
    return readable


def folder_refusal(root: Path, missing: str, fix: str) -> GentoolError | None:
    """None when the data set path `root` is a folder; else the refusal: a file there is named
    as a file (it exists, so calling it missing would send the user looking for a typo), any
    other path as `missing`. Either way ends with `fix`."""
    if root.is_dir():
        return None
    if root.exists():
        return GentoolError(f"dataset.source.path={root.absolute()} is a file, not a folder; "
                            f"{fix}")
    return GentoolError(f"{missing}; {fix}")


def load_folder(data_dir: str, path: str, size=(64, 64), channels: int = 3,
                test_fraction: float = 0.05, split_seed: int = 0) -> FolderData:
    """Every readable .png/.jpg/.jpeg/.bmp/.webp under `path` (recursively), split with a fixed
    seed; unreadable files are skipped with a warning naming each.

    `path` is relative to the current directory (`~` is expanded), like data_dir; `data_dir`
    itself is unused. `size` is [height, width] or one number for a square.
    """
    root = Path(os.path.expanduser(str(path)))
    refusal = folder_refusal(root, f"The image folder {root.absolute()} does not exist",
                             "set dataset.source.path= to a folder of images.")
    if refusal is not None:
        raise refusal
    files = image_files(root)
    if not files:
        raise GentoolError(f"{root.absolute()} holds no {'/'.join(EXTENSIONS)} images; set "
                           "dataset.source.path= to a folder that has some.")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if min(height, width) < 1:
        raise GentoolError(f"the image size {[height, width]} must be positive; set "
                           "dataset.shape=[3,64,64] or similar.")
    if channels not in (1, 3):
        raise GentoolError(f"an image folder can be read with 1 (grayscale) or 3 (RGB) channels, "
                           f"not {channels}; set dataset.shape=[3,{height},{width}].")
    readable = readable_images(files)
    if not readable:
        raise GentoolError(f"none of the {len(files)} image files under {root.absolute()} can be "
                           f"read (e.g. {files[0]}); replace them with readable .png/.jpg files "
                           "or set dataset.source.path= to another folder.")
    train, test = split_indices(len(readable), test_fraction, split_seed)
    return FolderData(ImageFiles([readable[i] for i in train], (height, width), channels, True),
                      ImageFiles([readable[i] for i in test], (height, width), channels, True),
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
