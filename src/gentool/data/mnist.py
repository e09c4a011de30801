"""MNIST and Fashion-MNIST from IDX files in torchvision's layout (<data_dir>/<Name>/raw/).

Files are read with our own IDX parser; torchvision is used only to download them when they are
missing. Fashion-MNIST is also found where Debian's dataset-fashion-mnist package installs it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gentool.data.download import try_download
from gentool.data.idx import read_idx
from gentool.data.splits import ImageData, Split
from gentool.errors import GentoolError

# Where Debian's dataset-fashion-mnist package puts the four gzipped files (tests monkeypatch it).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FILE_LIST = ", ".join(_FILES[:-1]) + f" and {_FILES[-1]} (each plain or .gz)"

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load_mnist(data_dir: str, download: bool = True) -> ImageData:
    """LeCun's 60,000 + 10,000 hand-written digits, uint8 (1, 28, 28), 10 classes."""
    from torchvision.datasets import MNIST

    return _load("MNIST", MNIST, Path(data_dir), download, (), [str(d) for d in range(10)], "")


def load_fashion_mnist(data_dir: str, download: bool = True) -> ImageData:
    """Zalando's 60,000 + 10,000 clothing images, uint8 (1, 28, 28), 10 classes."""
    from torchvision.datasets import FashionMNIST

    return _load("Fashion-MNIST", FashionMNIST, Path(data_dir), download,
                 (DEBIAN_FASHION_MNIST_DIR,), FASHION_CLASSES,
                 ", install Debian's dataset-fashion-mnist package")


def _load(title, torchvision_class, data_dir: Path, download: bool, other_dirs,
          class_names: list[str], other_hint: str) -> ImageData:
    # torchvision's layout: the class name is the folder, e.g. data/FashionMNIST/raw.
    raw = data_dir / torchvision_class.__name__ / "raw"
    files = next(filter(None, (_find(d) for d in (raw, *other_dirs))), None)
    if files is None and download:
        try_download(title, data_dir,
                     lambda: torchvision_class(str(data_dir), train=True, download=True),
                     writes_into=raw)
        files = _find(raw)
    if files is None:
        reason = ("could not be downloaded (offline?)" if download
                  else "dataset.source.download is false")
        raise GentoolError(f"{title} is not in {raw} and {reason}; put {_FILE_LIST} there"
                           f"{other_hint}, or set data_dir= to a folder that has "
                           f"{torchvision_class.__name__}/raw.")
    train = _split(files[0], files[1], len(class_names))
    test = _split(files[2], files[3], len(class_names))
    return ImageData(train, test, tuple(train.images.shape[1:]), len(class_names), class_names)


def _find(directory: Path) -> list[Path] | None:
    """The four files in `directory` (plain preferred over .gz), or None if any is missing."""
    found = []
    for name in _FILES:
        candidates = [p for p in (directory / name, directory / f"{name}.gz") if p.is_file()]
        if not candidates:
            return None
        found.append(candidates[0])
    return found


def _split(images_path: Path, labels_path: Path, num_classes: int) -> Split:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != "uint8" or images.ndim != 3 or labels.ndim != 1 \
            or len(images) != len(labels):
        raise GentoolError(f"{images_path} (shape {list(images.shape)}) and {labels_path} (shape "
                           f"{list(labels.shape)}) are not a matching image/label pair; replace "
                           "them with the original files.")
    labels = torch.from_numpy(labels).to(torch.int64)
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise GentoolError(f"{labels_path} holds labels outside 0..{num_classes - 1}; replace it "
                           "with the original file.")
    return Split(torch.from_numpy(images).to(torch.uint8).unsqueeze(1), labels)
