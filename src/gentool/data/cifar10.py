"""CIFAR-10 from the python pickle batches in torchvision's layout (<data_dir>/cifar-10-batches-py).

The batches are read here, not through torchvision's CIFAR10 class, because that class refuses any
file whose md5 differs from the official one; torchvision is used only to download.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from gentool.data.download import try_download
from gentool.data.splits import ImageData, Split
from gentool.errors import GentoolError

FOLDER = "cifar-10-batches-py"
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = ["test_batch"]
# The order of labels 0..9, used when batches.meta is absent.
CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck"]


def load_cifar10(data_dir: str, download: bool = True) -> ImageData:
    """Krizhevsky's 50,000 + 10,000 colour images, uint8 (3, 32, 32), 10 classes."""
    root = Path(data_dir) / FOLDER
    if not _complete(root) and download:
        from torchvision.datasets import CIFAR10

        try_download("CIFAR-10", data_dir, lambda: CIFAR10(str(data_dir), train=True, download=True))
    if not _complete(root):
        reason = ("could not be downloaded (offline?)" if download
                  else "dataset.source.download is false")
        raise GentoolError(f"CIFAR-10 is not in {root} and {reason}; unpack cifar-10-python.tar.gz "
                           f"from https://www.cs.toronto.edu/~kriz/cifar.html into {data_dir}, or "
                           f"set data_dir= to a folder that has {FOLDER}.")
    names = CLASSES
    if (root / "batches.meta").is_file():
        names = [n.decode() for n in _unpickle(root / "batches.meta")[b"label_names"]]
    return ImageData(_read(root, _TRAIN, len(names)), _read(root, _TEST, len(names)), (3, 32, 32),
                     len(names), names)


def _complete(root: Path) -> bool:
    return all((root / name).is_file() for name in _TRAIN + _TEST)


# All a CIFAR-10 batch pickle refers to: numpy arrays (numpy 1 and 2 spell the module apart) and,
# in batches written by Python 3 with protocol 2, byte strings. Anything else a pickle names could
# run code when loaded, so a file asking for it is refused.
_PICKLE_GLOBALS = {("numpy.core.multiarray", "_reconstruct"),
                   ("numpy._core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR-10 batch "
                                         "never holds")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    # The official batches are python-2 pickles of byte strings; encoding="bytes" reads them.
    try:
        with open(path, "rb") as file:
            return _BatchUnpickler(file, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError) as error:
        raise GentoolError(f"could not read {path} ({error}); replace it with the file from "
                           "cifar-10-python.tar.gz.") from error


def _read(root: Path, names: list[str], num_classes: int) -> Split:
    images, labels = [], []
    for name in names:
        batch = _unpickle(root / name)
        data = np.asarray(batch.get(b"data"))
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 \
                or len(batch.get(b"labels", ())) != len(data):
            raise GentoolError(f"{root / name} is not a CIFAR-10 batch (uint8 'data' of shape "
                               "[N, 3072] with N 'labels'); replace it with the original file.")
        # Each row is the red, then green, then blue 32x32 plane, each row-major.
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32)))
        labels.append(torch.tensor(batch[b"labels"], dtype=torch.int64))
    labels = torch.cat(labels)
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise GentoolError(f"{root} holds labels outside 0..{num_classes - 1}; replace the "
                           "batches with the original files.")
    return Split(torch.cat(images), labels)
