"""Documents as word counts: text folders (seeded split or a test/ sub-tree), the vocabulary of
the train split, the cache, and 20 Newsgroups offline."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from data_fixtures import CLASS_WORDS, write_text_folder
from gentool.data.text import load_newsgroups20, load_text_folder
from gentool.errors import GentoolError


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    return write_text_folder(root), write_text_folder(root, with_test=True)


def test_a_text_folder_becomes_counts_over_the_train_vocabulary(texts, tmp_path):
    loaded = load_text_folder(str(tmp_path), str(texts[0]), vocabulary=10, test_fraction=0.25)
    assert loaded.class_names == sorted(CLASS_WORDS) and loaded.num_classes == 3
    assert loaded.shape == (10,) and len(loaded.train.images) == 18 and \
        len(loaded.test.images) == 6
    counts = torch.cat([loaded.train.images, loaded.test.images])
    assert torch.equal(counts, counts.round()) and counts.min() >= 0
    # Each document has 12 topic words, "café" and its class name, and no stop word or number;
    # with 10 words kept, every document still has some.
    assert (counts.sum(1) > 0).all() and (counts.sum(1) <= 14).all()
    full = load_text_folder(str(tmp_path), str(texts[0]), vocabulary=100, test_fraction=0.25)
    assert full.shape == (22,)   # all there are: 18 topic words, 3 class names and café
    assert torch.equal(full.train.images.sum(1), torch.full((18,), 14.0))


def test_a_test_sub_tree_is_the_test_split(texts, tmp_path):
    loaded = load_text_folder(str(tmp_path), str(texts[1]), vocabulary=2000)
    assert len(loaded.train.images) == 24 and len(loaded.test.images) == 12
    assert sorted(loaded.test.labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4


def test_the_vectorised_folder_is_cached_by_content(texts, tmp_path):
    first = load_text_folder(str(tmp_path), str(texts[0]))
    cached = list((tmp_path / "gentool-text").glob("*.npz"))
    assert len(cached) == 1
    again = load_text_folder(str(tmp_path), str(texts[0]))
    assert torch.equal(first.train.images, again.train.images)
    assert torch.equal(first.test.labels, again.test.labels)
    assert again.class_names == first.class_names
    load_text_folder(str(tmp_path), str(texts[0]), vocabulary=5)   # other options: another key
    assert len(list((tmp_path / "gentool-text").glob("*.npz"))) == 2


@pytest.mark.parametrize("layout,message", [
    ({}, "has no sub-folders"), ({"a/": None}, "hold no files"),
    ({"a/x.txt": "the and of 123", "a/y.txt": "and the 42"}, "contain no words")])
def test_bad_folders_are_one_sentence(tmp_path, layout, message):
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            (root / name).write_text(text)
    (root / "b").mkdir(exist_ok=True) if layout else None
    with pytest.raises(GentoolError, match=message):
        load_text_folder(str(tmp_path), str(root), cache=False)
    with pytest.raises(GentoolError, match="is not a folder"):
        load_text_folder(str(tmp_path), str(tmp_path / "missing"))
    (tmp_path / "notes.txt").write_text("words")
    with pytest.raises(GentoolError, match=r"notes.txt is a file, not a folder; give a folder "
                                           r"with one sub-folder of text files per class\.$"):
        load_text_folder(str(tmp_path), str(tmp_path / "notes.txt"))


def test_newsgroups_offline_is_one_sentence(monkeypatch, tmp_path):
    import sklearn.datasets

    def offline(**kwargs):
        assert kwargs["download_if_missing"] is False
        raise OSError("20Newsgroups dataset not found")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(GentoolError, match=r"20 Newsgroups is not in .*scikit_learn_data"):
        load_newsgroups20(str(tmp_path), download=False)


def test_a_failed_newsgroups_fetch_is_quiet_and_leaves_no_folders(monkeypatch, tmp_path,
                                                                   recwarn):
    import sklearn.datasets
    from urllib.error import URLError

    def offline(data_home, **kwargs):   # what scikit-learn does offline
        Path(data_home, "20news_home").mkdir(parents=True, exist_ok=True)
        warnings.warn("Retry downloading from url: https://example.invalid/20news.tar.gz")
        raise URLError("Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(GentoolError, match=r"^20 Newsgroups is not in .*/x/scikit_learn_data and "
                                           r"could not be downloaded"):
        load_newsgroups20(str(tmp_path / "x"))
    assert not (tmp_path / "x").exists() and len(recwarn) == 0
    # a data folder that was there stays, with what it held; only the new empty folders go
    (tmp_path / "data" / "scikit_learn_data").mkdir(parents=True)
    (tmp_path / "data" / "mnist.gz").write_bytes(b"x")
    with pytest.raises(GentoolError, match="could not be downloaded"):
        load_newsgroups20(str(tmp_path / "data"))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["mnist.gz",
                                                                    "scikit_learn_data"]
    assert list((tmp_path / "data" / "scikit_learn_data").iterdir()) == []


def test_newsgroups_posts_become_counts(monkeypatch, tmp_path):
    import sklearn.datasets
    from sklearn.utils import Bunch

    def fake(subset, **kwargs):
        data = [f"{w} {w} rocket" if i % 2 else f"{w} hockey" for i, w in
                enumerate(["space", "ice", "orbit", "puck"])]
        return Bunch(data=data, target=np.array([0, 1, 0, 1]), target_names=["sci", "sport"])

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", fake)
    loaded = load_newsgroups20(str(tmp_path))
    assert loaded.class_names == ["sci", "sport"] and loaded.shape == (6,)
    assert loaded.train.images.sum().item() == 10
