"""Numeric vectors from files: a matrix of shape [N, D] from .npy, .npz (dense, or a scipy sparse
matrix written by scipy.sparse.save_npz) or .csv, with optional labels.

Every source of vectors (this one, text_folder, newsgroups20) returns a VectorData: float32
splits [N, D] that build_data moves to the device whole, like the in-memory images. The whole
matrix is held in memory (dense, float32: N x D x 4 bytes, e.g. 1.2 GB for 150,000 x 2,000), so
data larger than memory is not supported.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gentool.data.splits import Split, split_indices, take
from gentool.errors import GentoolError
from gentool.options import not_one_of

SCALES = ("none", "standardise", "minmax")
# What a data set's values are (dataset.values); losses declare which they model.
VALUES = ("real", "unit", "binary", "counts")
SPARSE_KEYS = {"format", "shape", "data", "indices", "indptr"}   # scipy.sparse.save_npz
MATRIX_KEYS = ("x", "X", "data", "features")                     # the matrix of a dense .npz


@dataclass
class VectorData:
    """What every vector source returns; Split.images holds float32 [N, D] here."""

    train: Split
    test: Split
    shape: tuple[int]
    num_classes: int | None
    class_names: list[str] | None = None


def load_vectors(data_dir: str, path: str, labels: str | None = None,
                 label_column: str | int | None = None, test_path: str | None = None,
                 test_labels: str | None = None, key: str | None = None, scale: str = "none",
                 test_fraction: float = 0.2, split_seed: int = 0) -> VectorData:
    """The matrix at `path` (relative to the current directory, `~` allowed) as vectors.

    Labels (optional) come from `labels` (a .npy/.txt/.csv file of one label per row, or the
    name of an array in the .npz) or, for a .csv, from its column `label_column` (a header name
    or a 0-based index). Labels may be numbers or words; classes are their sorted distinct
    values. `test_path` (with `test_labels`) gives the test split; without it the split is
    seeded (`test_fraction`, `split_seed`). `scale` is fitted on the train split: `standardise`
    (zero mean, unit variance per column), `minmax` (each column onto [0, 1]) or `none`.
    `data_dir` is unused (the path is given); build_data passes it to every source.
    """
    if scale not in SCALES:
        raise not_one_of("dataset.source.scale", scale, SCALES, "set dataset.source.scale=none.")
    x, y = read_labelled(path, labels, label_column, key)
    if test_path:
        inside = labels if labels is not None and Path(test_path).suffix.lower() == ".npz" \
            else None   # the same array name inside the test .npz
        x_test, y_test = read_labelled(test_path, test_labels or inside, label_column, key)
        if (y is None) != (y_test is None):
            raise GentoolError("labels were given for only one of the train and test files; "
                               "give dataset.source.labels and dataset.source.test_labels "
                               "(or a label_column in both .csv files), or neither.")
        if x_test.shape[1] != x.shape[1]:
            raise GentoolError(f"{test_path} has {x_test.shape[1]} columns but {path} has "
                               f"{x.shape[1]}; give test and train files of the same width.")
    else:
        train_index, test_index = split_indices(len(x), test_fraction, split_seed)
        x, x_test = x[train_index.numpy()], x[test_index.numpy()]
        y, y_test = (None, None) if y is None else (y[train_index.numpy()],
                                                    y[test_index.numpy()])
    x, x_test = scaled(x, x_test, scale)
    return vector_data(x, y, x_test, y_test)


def vector_data(x: np.ndarray, y, x_test: np.ndarray, y_test) -> VectorData:
    """VectorData of float matrices and their raw labels (numbers or strings, or None)."""
    if y is None:
        classes, labels, labels_test = None, None, None
    else:
        classes = sorted(set(np.asarray(y).tolist()) | set(np.asarray(y_test).tolist()))
        index = {value: i for i, value in enumerate(classes)}
        labels = torch.tensor([index[v] for v in np.asarray(y).tolist()], dtype=torch.int64)
        labels_test = torch.tensor([index[v] for v in np.asarray(y_test).tolist()],
                                   dtype=torch.int64)
    train = Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), labels)
    test = Split(torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32)), labels_test)
    names = None if classes is None else [str(c) for c in classes]
    return VectorData(train, test, (int(x.shape[1]),), None if classes is None else len(classes),
                      names)


def read_labelled(path: str, labels: str | None, label_column: str | int | None,
                  key: str | None):
    """(matrix [N, D] float64, labels [N] or None) of one file."""
    file = _existing(path, "dataset.source.path")
    y = None
    suffix = file.suffix.lower()
    if suffix == ".csv":
        x, y = read_csv(file, label_column)
    elif label_column is not None:
        raise GentoolError(f"dataset.source.label_column is set but {file.name} is not a .csv; "
                           "give the labels with dataset.source.labels=<file> instead.")
    elif suffix == ".npy":
        x = _numeric(_np_load(file), file)
    elif suffix == ".npz":
        x = read_npz(file, key)
    else:
        raise GentoolError(f"{file} is not a .npy, .npz or .csv file; save the matrix in one "
                           "of those formats.")
    if labels is not None:
        if y is not None:
            raise GentoolError("both dataset.source.labels and dataset.source.label_column are "
                               "set; give the labels one way.")
        y = read_label_file(file, labels)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise GentoolError(f"{file} holds an array of shape {list(x.shape)} but vectors need a "
                           "non-empty 2-D matrix [examples, features]; reshape it to 2-D.")
    if not np.isfinite(x).all():
        raise GentoolError(f"{file} holds NaN or infinite values; fill or drop them first.")
    if y is not None and len(y) != len(x):
        raise GentoolError(f"{file} has {len(x)} rows but its labels have {len(y)}; give one "
                           "label per row.")
    return x, y


def read_npz(file: Path, key: str | None) -> np.ndarray:
    archive = _np_load(file)
    names = set(archive.files)
    if SPARSE_KEYS <= names:
        import scipy.sparse

        return scipy.sparse.load_npz(file).toarray().astype(np.float64)
    if key is None:
        key = next((k for k in MATRIX_KEYS if k in names), None)
        if key is None and len(names) == 1:
            key = next(iter(names))
    if key not in names:
        raise GentoolError(f"{file.name} holds arrays {sorted(names)}; name the matrix with "
                           "dataset.source.key=<name>.")
    return _numeric(archive[key], file)


def read_label_file(file: Path, labels: str) -> np.ndarray:
    """Labels from a file beside the matrix, or an array named `labels` inside a .npz."""
    candidate = Path(os.path.expanduser(labels))
    if not candidate.exists() and file.suffix.lower() == ".npz":
        archive = _np_load(file)
        if labels in archive.files:
            return np.asarray(archive[labels]).reshape(-1)
    label_file = _existing(labels, "dataset.source.labels")
    if label_file.suffix.lower() == ".npy":
        return np.asarray(_np_load(label_file)).reshape(-1)
    lines = label_file.read_text(encoding="utf-8").splitlines()
    values = [line.strip() for line in lines if line.strip()]
    return np.asarray([_number_or_word(v) for v in values], dtype=object)


def read_csv(file: Path, label_column: str | int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """A .csv of numbers, with a header row when its first row is not all numbers."""
    with open(file, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise GentoolError(f"{file} is empty; give a .csv with one row per example.")
    header = None if all(_is_number(cell) for cell in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    column = None
    if label_column is not None:
        column = _column_index(label_column, header, len(rows[0]), file)
    width = len(rows[0])
    values, labels = [], []
    for number, row in enumerate(body, start=2 if header else 1):
        if len(row) != width:
            raise GentoolError(f"row {number} of {file} has {len(row)} fields but the first has "
                               f"{width}; give every row the same columns.")
        if column is not None:
            labels.append(_number_or_word(row[column].strip()))
            row = row[:column] + row[column + 1:]
        try:
            values.append([float(cell) for cell in row])
        except ValueError:
            bad = next(cell for cell in row if not _is_number(cell))
            raise GentoolError(f"row {number} of {file} holds '{bad}', which is not a number; "
                               "give numbers only (labels via dataset.source.label_column)."
                               ) from None
    return np.asarray(values, dtype=np.float64).reshape(len(body), -1), \
        (np.asarray(labels, dtype=object) if column is not None else None)


def scaled(x: np.ndarray, x_test: np.ndarray, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Both splits scaled with statistics of the train split (constant columns are left at 0)."""
    if scale == "standardise":
        centre, spread = x.mean(0), x.std(0)
    elif scale == "minmax":
        centre, spread = x.min(0), x.max(0) - x.min(0)
    else:
        return x, x_test
    spread = np.where(spread > 0, spread, 1.0)
    return (x - centre) / spread, (x_test - centre) / spread


def check_values(x: torch.Tensor, values: str, name: str) -> None:
    """Refuse a split whose numbers are not what dataset.values says they are."""
    if values not in VALUES:
        raise not_one_of("dataset.values", values, VALUES, "set dataset.values=real.")
    bad = None
    if values == "counts" and ((x < 0).any() or (x != x.round()).any()):
        bad = "non-negative whole numbers (counts)"
    elif values == "binary" and ((x != 0) & (x != 1)).any():
        bad = "only 0 and 1"
    elif values == "unit" and ((x < 0) | (x > 1)).any():
        bad = "values in [0, 1]"
    if bad:
        raise GentoolError(f"dataset.values={values} says {name} holds {bad}, and it does not; "
                           "set dataset.values=real (or scale the data to fit).")


def _existing(path: str, key: str) -> Path:
    file = Path(os.path.abspath(os.path.expanduser(str(path))))
    if not file.is_file():
        raise GentoolError(f"{key}={path} is not a file ({file}); give the path of an existing "
                           "file.")
    return file


def _np_load(file: Path):
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise GentoolError(f"{file} cannot be read as {file.suffix} ({str(error)[:80]}); save it "
                           f"with numpy.save{'z' if file.suffix == '.npz' else ''}.") from None


def _numeric(array: np.ndarray, file: Path) -> np.ndarray:
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise GentoolError(f"{file} holds {array.dtype} values, not numbers; save a numeric "
                           "matrix.")
    return array.astype(np.float64)


def _column_index(label_column: str | int, header, width: int, file: Path) -> int:
    if header and str(label_column) in header:
        return header.index(str(label_column))
    if str(label_column).lstrip("-").isdigit() and -width <= int(label_column) < width:
        return int(label_column) % width
    names = f"columns {header}" if header else f"{width} columns and no header"
    raise GentoolError(f"dataset.source.label_column={label_column} is not a column of {file} "
                       f"({names}); give a header name or a 0-based index.")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _number_or_word(value: str):
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number
