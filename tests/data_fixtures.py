"""Tiny data files in each real on-disk format, for tests that read them through real loaders.

Every writer is deterministic (fixed numpy seed) and returns the path a loader is pointed at.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> Path:
    """An IDX file holding a uint8 array (magic 0x0000_08_<ndim>, big-endian dims); .gz if gz."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.tobytes()
    path = Path(f"{path}.gz") if gz else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_set(directory: Path, n_train: int = 64, n_test: int = 32, gz: bool = False,
                  size: int = 28) -> Path:
    """The four MNIST-format files (train/t10k images and labels) flat in `directory`.

    Images are random; labels are index % 10, so tests can check them.
    """
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(Path(directory) / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, size, size), dtype=np.uint8), gz)
        write_idx(Path(directory) / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    return Path(directory)


def write_mnist_idx(root: Path, n_train: int = 64, n_test: int = 32, gz: bool = False,
                    name: str = "MNIST") -> Path:
    """torchvision's layout <root>/<name>/raw/ (name "MNIST" or "FashionMNIST"); returns raw/."""
    return write_idx_set(Path(root) / name / "raw", n_train, n_test, gz)


def write_cifar10(root: Path, n_per_batch: int = 8, n_test: int = 8, meta: bool = True) -> Path:
    """<root>/cifar-10-batches-py with data_batch_1..5, test_batch (python-2 style byte-keyed
    pickles, 'data' uint8 [N, 3072] as R, G, B planes) and batches.meta if meta; returns it.

    Example i of each batch has labels i % 10 and its red plane filled with i.
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    batches = [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, n in batches:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        data[:, :1024] = np.arange(n, dtype=np.uint8)[:, None]
        batch = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(n)],
                 b"data": data, b"filenames": [f"{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as file:
            pickle.dump(batch, file, protocol=2)
    if meta:
        names = [f"class{i}".encode() for i in range(10)]
        with open(folder / "batches.meta", "wb") as file:
            pickle.dump({b"label_names": names, b"num_vis": 3072}, file, protocol=2)
    return folder


def write_frey_mat(root: Path, images: np.ndarray | None = None, n: int = 20) -> Path:
    """<root>/frey_rawface.mat with key 'ff' uint8 [560, N]: column j is image j (28 rows x 20
    columns) flattened row by row, as in Roweis' file. Random images unless given [N, 28, 20]."""
    from scipy.io import savemat

    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (n, 28, 20), dtype=np.uint8)
    path = Path(root) / "frey_rawface.mat"
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"ff": np.ascontiguousarray(images.reshape(len(images), 560).T)})
    return path


def write_image_folder(root: Path, n: int = 12) -> Path:
    """An image tree under <root>/images: PNG and JPEG, RGB, L and RGBA, mixed sizes (some wide,
    some tall), in nested folders, plus a non-image file that must be ignored; returns it."""
    folder = Path(root) / "images"
    rng = np.random.default_rng(0)
    sizes = [(40, 30), (30, 40), (64, 64), (17, 23)]
    for i in range(n):
        width, height = sizes[i % len(sizes)]
        channels = (3, 1, 4)[i % 3]     # RGB, L, RGBA
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        image = Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels)
        path = folder / f"sub{i % 2}" / ("deep" if i % 4 == 3 else "") / f"img{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i % 2 and channels != 4:     # JPEG has no alpha
            image.save(path.with_suffix(".JPG"), quality=90)
        else:
            image.save(path.with_suffix(".png"))
    (folder / "notes.txt").write_text("not an image")
    return folder


def write_paired_folder(root: Path, n_train: int = 6, n_test: int = 3, size: int = 16) -> Path:
    """pix2pix-style A|B files under <root>/pairs/{train,test}: A is a random RGB image, B is A
    with its colours inverted, side by side in one PNG of width 2 * size; returns the folder."""
    folder = Path(root) / "pairs"
    rng = np.random.default_rng(1)
    for split, count in (("train", n_train), ("test", n_test)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(
                folder / split / f"{i}.png")
    return folder


# -- vectors and documents ----------------------------------------------------------------------
CLASS_WORDS = {"astro": "galaxy telescope orbit planet comet nebula",
               "cooking": "recipe oven flour butter sugar dough",
               "sailing": "boat sail harbour wind anchor keel"}


def vector_matrix(n: int = 40, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """[n, d] float matrix whose rows of class c (= index % 3) have mean 3c, and the classes as
    words ("a", "b", "c")."""
    rng = np.random.default_rng(0)
    classes = np.arange(n) % 3
    return rng.normal(size=(n, d)) + 3.0 * classes[:, None], np.array(list("abc"))[classes]


def write_vector_files(root: Path, n: int = 40, d: int = 6) -> Path:
    """The same matrix in every vector format under <root>/vectors: x.npy with labels.txt (one
    word per line) and labels.npy (integers), x.npz (dense, arrays x and y), counts.npz (a
    scipy.sparse.save_npz matrix of whole numbers), table.csv (a header; the label column
    "kind" between numbers) and test.csv (5 more rows of the same columns); returns it."""
    import scipy.sparse

    folder = Path(root) / "vectors"
    folder.mkdir(parents=True, exist_ok=True)
    x, words = vector_matrix(n, d)
    np.save(folder / "x.npy", x)
    (folder / "labels.txt").write_text("\n".join(words) + "\n")
    np.save(folder / "labels.npy", np.arange(n) % 3)
    np.savez(folder / "x.npz", x=x, y=np.arange(n) % 3)
    counts = np.random.default_rng(1).poisson(1.0, size=(n, d)).astype(np.float64)
    scipy.sparse.save_npz(folder / "counts.npz", scipy.sparse.csr_matrix(counts))
    for name, rows in (("table.csv", range(n)), ("test.csv", range(5))):
        lines = ["f0,f1,kind," + ",".join(f"f{j}" for j in range(2, d))]
        lines += [",".join([*(repr(float(v)) for v in x[i, :2]), words[i],
                             *(repr(float(v)) for v in x[i, 2:])]) for i in rows]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_text_folder(root: Path, per_class: int = 8, with_test: bool = False) -> Path:
    """Plain-text documents under <root>/texts/<class>/ (three classes, each with its own words
    and the shared stop words "the" and "and"), one of them Latin-1 encoded; with `with_test`
    the layout is texts/train/<class> and texts/test/<class> (4 test documents per class)."""
    folder = Path(root) / ("texts_split" if with_test else "texts")
    rng = np.random.default_rng(2)
    splits = [("train", per_class), ("test", 4)] if with_test else [("", per_class)]
    for split, count in splits:
        for label, words in CLASS_WORDS.items():
            vocabulary = words.split()
            target = folder / split / label
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                chosen = rng.choice(vocabulary, size=12)
                text = "The " + " and ".join(chosen) + f" 1234 caf\u00e9 {label}\n"
                encoding = "latin-1" if i == 0 else "utf-8"
                (target / f"doc{i}.txt").write_bytes(text.encode(encoding))
    return folder
