"""Brendan Frey's faces (Roweis' frey_rawface.mat): 1,965 grayscale 28x20 frames, unlabelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gentool.data.splits import ImageData, split_indices, take
from gentool.errors import GentoolError

FILE = "frey_rawface.mat"
HEIGHT, WIDTH = 28, 20


def load_frey_faces(data_dir: str, test_fraction: float = 0.1, split_seed: int = 0) -> ImageData:
    """The faces as uint8 (1, 28, 20) images with a fixed seeded train/test split, no labels."""
    from scipy.io import loadmat  # slow import, only when used

    path = Path(data_dir) / FILE
    if not path.is_file():
        raise GentoolError(f"{path} does not exist; download {FILE} from Sam Roweis' data page "
                           "(https://cs.nyu.edu/~roweis/data.html) into that folder, or set "
                           "data_dir= to the folder that has it.")
    try:
        faces = np.asarray(loadmat(str(path))["ff"])
    except (OSError, ValueError, KeyError) as error:
        raise GentoolError(f"could not read the 'ff' matrix from {path} ({error}); replace it with "
                           f"the original {FILE}.") from error
    if faces.dtype != np.uint8 or faces.ndim != 2 or faces.shape[0] != HEIGHT * WIDTH:
        raise GentoolError(f"{path} holds 'ff' of {faces.dtype} {list(faces.shape)}, not uint8 "
                           f"[{HEIGHT * WIDTH}, N]; replace it with the original {FILE}.")
    # One image per column, each stored row by row (28 rows of 20 pixels).
    images = torch.from_numpy(np.ascontiguousarray(faces.T)).reshape(-1, 1, HEIGHT, WIDTH)
    train, test = split_indices(len(images), test_fraction, split_seed)
    return ImageData(take(images, None, train), take(images, None, test), (1, HEIGHT, WIDTH), None)
