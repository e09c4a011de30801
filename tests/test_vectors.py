"""Vector data through the real loaders: every file format, labels, splits, scaling, and the
one-sentence refusals of bad files."""

import numpy as np
import pytest
import torch

from data_fixtures import vector_matrix, write_vector_files
from gentool.data import build_data
from gentool.data.vectors import load_vectors
from gentool.errors import GentoolError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_vector_files(tmp_path_factory.mktemp("vec"))


def all_rows(loaded):
    return torch.cat([loaded.train.images, loaded.test.images])


def test_npy_with_word_labels_splits_by_seed_and_keeps_every_row(folder):
    x, words = vector_matrix()
    loaded = load_vectors("", str(folder / "x.npy"), labels=str(folder / "labels.txt"))
    assert loaded.shape == (6,) and loaded.num_classes == 3 and loaded.class_names == list("abc")
    assert len(loaded.train.images) == 32 and len(loaded.test.images) == 8
    assert loaded.train.images.dtype == torch.float32
    # Every row is there once, each with its own label.
    rows = all_rows(loaded).double().numpy()
    labels = torch.cat([loaded.train.labels, loaded.test.labels]).numpy()
    for row, label in zip(rows, labels):
        i = int(np.argmin(np.abs(x - row).sum(1)))
        assert np.allclose(x[i], row, atol=1e-5) and words[i] == "abc"[label]
    again = load_vectors("", str(folder / "x.npy"), labels=str(folder / "labels.npy"))
    assert torch.equal(again.test.images, loaded.test.images)   # the same seeded split


@pytest.mark.parametrize("name,options", [
    ("x.npz", {"labels": "y"}), ("x.npz", {"labels": None}),
    ("table.csv", {"label_column": "kind"}), ("table.csv", {"label_column": "2"})])
def test_npz_and_csv_give_the_same_matrix(folder, name, options):
    loaded = load_vectors("", str(folder / name), **options)
    reference = load_vectors("", str(folder / "x.npy"))
    assert torch.allclose(all_rows(loaded), all_rows(reference))
    assert (loaded.num_classes == 3) == any(options.values())


def test_sparse_npz_is_read_dense(folder):
    import scipy.sparse

    loaded = load_vectors("", str(folder / "counts.npz"), test_fraction=0.25)
    dense = scipy.sparse.load_npz(folder / "counts.npz").toarray()
    assert all_rows(loaded).sum().item() == pytest.approx(dense.sum())
    assert loaded.num_classes is None and loaded.train.labels is None


def test_given_test_file_and_scaling_fitted_on_train(folder):
    loaded = load_vectors("", str(folder / "table.csv"), label_column="kind",
                          test_path=str(folder / "test.csv"), scale="standardise")
    assert len(loaded.train.images) == 40 and len(loaded.test.images) == 5
    train = loaded.train.images.double()
    assert torch.allclose(train.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(train.std(0, unbiased=False), torch.ones(6, dtype=torch.float64),
                          atol=1e-5)
    minmax = load_vectors("", str(folder / "x.npy"), scale="minmax")
    assert minmax.train.images.min() == 0 and minmax.train.images.max() == 1
    with pytest.raises(GentoolError, match=r"did you mean dataset.source.scale=standardise\?$"):
        load_vectors("", str(folder / "x.npy"), scale="standardize")


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("make,options,message", [
    (lambda d: str(d / "none.npy"), {}, "is not a file"),
    (lambda d: write(d / "x.txt", "1 2"), {}, "not a .npy, .npz or .csv"),
    (lambda d: write(d / "bad.csv", "1,2\n3,x\n"), {}, "row 2 of .* holds 'x'"),
    (lambda d: write(d / "ragged.csv", "1,2\n3\n"), {}, "row 2 .* has 1 fields"),
    (lambda d: write(d / "broken.npy", "not numpy"), {}, "cannot be read as .npy"),
    (lambda d: np.save(d / "cube.npy", np.zeros((2, 3, 4))) or str(d / "cube.npy"), {},
     r"shape \[2, 3, 4\] .* 2-D matrix"),
    (lambda d: np.save(d / "nan.npy", np.array([[1.0, np.nan]] * 4)) or str(d / "nan.npy"), {},
     "NaN"),
    (lambda d: np.savez(d / "two.npz", a=np.zeros((4, 2)), b=np.zeros((4, 2)))
     or str(d / "two.npz"), {}, "dataset.source.key"),
    (lambda d: write(d / "ok.csv", "1,2\n3,4\n5,6\n"), {"label_column": "kind"},
     "label_column=kind is not a column"),
    (lambda d: write(d / "ok2.csv", "1,2\n3,4\n"), lambda d: {"labels": write(d / "l.txt", "a\n")},
     "has 2 rows but its labels have 1"),
    (lambda d: write(d / "ok3.csv", "1,2\n3,4\n"), {"scale": "zscore"},
     "scale is 'zscore'"),
])
def test_bad_files_are_one_sentence(tmp_path, make, options, message):
    with pytest.raises(GentoolError, match=message):
        options = options(tmp_path) if callable(options) else options
        load_vectors("", make(tmp_path), **options)


def test_build_data_checks_shape_values_and_binarize(compose_train, folder, tmp_path):
    base = ["dataset=vectors", f"dataset.source.path={folder / 'x.npy'}", "dataset.shape=[6]",
            f"data_dir={tmp_path}"]
    cfg = compose_train(*base)
    data = build_data(cfg.dataset, str(tmp_path), "cpu", batch_size=8, seed=0)
    assert data.kind == "vectors" and data.shape == (6,)
    batch = next(data.train.iter_batches())
    assert batch.x.shape == (8, 6) and batch.x.dtype == torch.float32 and batch.labels is None
    with pytest.raises(GentoolError, match=r"dataset.shape is \[5\] but vectors holds vectors "
                                           r"of shape \[6\]; set dataset.shape=\[6\]"):
        build_data(compose_train(*base, "dataset.shape=[5]").dataset, str(tmp_path), "cpu", 8, 0)
    with pytest.raises(GentoolError, match="dataset.values=counts says .* non-negative whole"):
        build_data(compose_train(*base, "dataset.values=counts").dataset, str(tmp_path), "cpu",
                   8, 0)
    with pytest.raises(GentoolError, match="dataset.binarize is 'static' but vectors holds"):
        build_data(compose_train(*base, "dataset.binarize=static").dataset, str(tmp_path), "cpu",
                   8, 0)
    with pytest.raises(GentoolError, match=r"dataset.num_classes is None but vectors has 3"):
        build_data(compose_train(*base, f"+dataset.source.labels={folder / 'labels.txt'}",
                                 ).dataset, str(tmp_path), "cpu", 8, 0)
