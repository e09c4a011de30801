"""scikit-learn's 8x8 hand-written digits: ships inside scikit-learn, so it works offline."""

from __future__ import annotations

import torch

from gentool.data.splits import ImageData, split_indices, take


def load_digits(data_dir: str, test_fraction: float = 0.2, split_seed: int = 0) -> ImageData:
    """The 1,797 digits as uint8 (1, 8, 8) images with a fixed seeded train/test split.

    `data_dir` is unused (the data comes with scikit-learn); it is accepted because
    build_data passes it to every source.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # slow import, only when used

    bunch = sklearn_digits()
    # The pixels are counts 0..16 (of a 4x4 block); scale them onto the usual 0..255.
    values = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round()
    images = values.to(torch.uint8).unsqueeze(1)
    labels = torch.from_numpy(bunch.target).to(torch.int64)
    train, test = split_indices(len(images), test_fraction, split_seed)
    return ImageData(take(images, labels, train), take(images, labels, test), (1, 8, 8), 10,
                     [str(d) for d in range(10)])
