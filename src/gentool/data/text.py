"""Documents as bags of words: a folder of plain-text files per class, or 20 Newsgroups.

A document becomes its word counts over a vocabulary of the `vocabulary` most frequent words of
the training split (2,000 by default, as in Hinton & Salakhutdinov 2006), English stop words
removed; words are runs of two or more letters, lower-cased. The counts are the data (float32
[N, vocabulary], dataset.values=counts): the multinomial likelihood scores them, and the encoder
chooses what it sees of them (nets.mlp.MLPEncoder's `inputs`). A document with none of the
vocabulary's words is left out: it has nothing to encode.

The vectorised folder is cached as <data_dir>/gentool-text/<key>.npz, the key a hash of every
file's path and bytes and of the options, so an edited corpus is vectorised afresh.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from gentool.data.folder import folder_refusal
from gentool.data.splits import split_indices
from gentool.data.vectors import VectorData, vector_data
from gentool.engine.run_directory import first_missing, remove_empty_folders
from gentool.errors import GentoolError

log = logging.getLogger("gentool")

TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"   # two or more letters: no numbers, no underscores
CACHE_VERSION = 1                         # part of the cache key: bump when vectorising changes


def load_text_folder(data_dir: str, path: str, vocabulary: int = 2000, stop_words: bool = True,
                     test_fraction: float = 0.2, split_seed: int = 0,
                     cache: bool = True) -> VectorData:
    """Documents under `path`/<class>/... (any depth, every regular file) as word counts.

    With `path`/train/<class> and `path`/test/<class> (scikit-learn's load_files layout, e.g.
    20 Newsgroups "bydate"), test/ is the test split; otherwise the split is seeded
    (`test_fraction`, `split_seed`). `path` is relative to the current directory (`~` allowed).
    """
    root = Path(os.path.abspath(os.path.expanduser(str(path))))
    refusal = folder_refusal(root, f"dataset.source.path={path} is not a folder ({root})",
                             "give a folder with one sub-folder of text files per class.")
    if refusal is not None:
        raise refusal
    _check_vocabulary(vocabulary)
    given_split = (root / "train").is_dir() and (root / "test").is_dir()
    train_docs = read_classes(root / "train" if given_split else root)
    test_docs = read_classes(root / "test") if given_split else None
    digest = hashlib.sha256(repr((CACHE_VERSION, vocabulary, stop_words, test_fraction,
                                  split_seed, given_split)).encode())
    for docs in (train_docs, test_docs or []):
        for label, name, data in docs:
            digest.update(f"{label}/{name}:{len(data)}:".encode())
            digest.update(data)
    cached = Path(os.path.expanduser(str(data_dir))) / "gentool-text" / f"{digest.hexdigest()[:24]}.npz"
    if cache and cached.is_file():
        return _from_cache(cached)
    if test_docs is None:
        train_index, test_index = split_indices(len(train_docs), test_fraction, split_seed)
        test_docs = [train_docs[i] for i in test_index.tolist()]
        train_docs = [train_docs[i] for i in train_index.tolist()]
    loaded = vectorised([_text(d) for _, _, d in train_docs], [c for c, _, _ in train_docs],
                        [_text(d) for _, _, d in test_docs], [c for c, _, _ in test_docs],
                        vocabulary, stop_words, source=str(root))
    if cache:
        _to_cache(cached, loaded)
    return loaded


def load_newsgroups20(data_dir: str, vocabulary: int = 2000, stop_words: bool = True,
                      download: bool = True, remove: list[str] | None = None) -> VectorData:
    """20 Newsgroups "bydate" (11,314 train / 7,532 test posts, 20 groups) through
    scikit-learn's reader, cached under <data_dir>/scikit_learn_data; `remove` strips parts of
    each post ("headers", "footers", "quotes") so the groups are not told apart by their headers.
    """
    from sklearn.datasets import fetch_20newsgroups

    _check_vocabulary(vocabulary)
    home = Path(os.path.expanduser(str(data_dir))) / "scikit_learn_data"
    # scikit-learn makes <home>/20news_home (and <home>) before it tries the network; a failed
    # fetch leaves them empty, so the folders that did not exist before it are removed.
    scratch = home.absolute() / "20news_home"
    created_from = first_missing(scratch)
    splits = {}
    for subset in ("train", "test"):
        try:
            with warnings.catch_warnings():
                # Offline, each retry is a UserWarning naming scikit-learn's source file, shown
                # before gentool's own sentence; the error below says what failed.
                warnings.simplefilter("ignore")
                bunch = fetch_20newsgroups(data_home=str(home), subset=subset,
                                           remove=tuple(remove or ()),
                                           download_if_missing=download)
        except OSError as error:   # offline download failures are URLError, an OSError
            if created_from is not None:
                remove_empty_folders(scratch, created_from)
            raise GentoolError(
                f"20 Newsgroups is not in {home} and could not be downloaded ({error}); run "
                "once online with data_dir set, or copy scikit-learn's 20news-bydate cache "
                "there, or unpack 20news-bydate.tar.gz and use dataset=text_folder.") from None
        splits[subset] = ([str(t) for t in bunch.data],
                          [bunch.target_names[i] for i in bunch.target])
    return vectorised(*splits["train"], *splits["test"], vocabulary, stop_words,
                      source="20 Newsgroups")


def read_classes(root: Path) -> list[tuple[str, str, bytes]]:
    """(class, relative path, bytes) of every file under each sub-folder of root, sorted."""
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise GentoolError(f"{root} has no sub-folders; put each class's text files in a "
                           "sub-folder named after the class.")
    docs = []
    for folder in classes:
        for file in sorted(folder.rglob("*")):
            if file.is_file() and not file.name.startswith("."):
                docs.append((folder.name, str(file.relative_to(folder)), file.read_bytes()))
    if not docs:
        raise GentoolError(f"the class folders under {root} hold no files; put plain-text "
                           "documents in them.")
    return docs


def vectorised(train_texts: list[str], train_labels: list, test_texts: list[str],
               test_labels: list, vocabulary: int, stop_words: bool, source: str) -> VectorData:
    """Word counts of both splits over the train split's `vocabulary` most frequent words."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(max_features=vocabulary, token_pattern=TOKEN_PATTERN,
                                 stop_words="english" if stop_words else None)
    try:
        train = vectorizer.fit_transform(train_texts)
    except ValueError:   # scikit-learn: "empty vocabulary"
        raise GentoolError(f"the training documents of {source} contain no words; give "
                           "plain-text files.") from None
    test = vectorizer.transform(test_texts)
    kept_train, kept_test = _non_empty(train), _non_empty(test)
    dropped = len(train_texts) + len(test_texts) - len(kept_train) - len(kept_test)
    if dropped:
        log.info("%s: %d documents without any of the %d vocabulary words are left out",
                 source, dropped, len(vectorizer.vocabulary_))
    if len(kept_test) == 0:
        raise GentoolError(f"no test document of {source} contains a vocabulary word; add "
                           "documents to the test split.")
    return vector_data(train[kept_train].toarray(), np.asarray(train_labels, dtype=object)[kept_train],
                       test[kept_test].toarray(), np.asarray(test_labels, dtype=object)[kept_test])


def _non_empty(counts) -> np.ndarray:
    return np.flatnonzero(np.asarray(counts.sum(axis=1)).ravel() > 0)


def _text(data: bytes) -> str:
    # Plain text in any 8-bit encoding: UTF-8 where it decodes, Latin-1 (total) otherwise.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _check_vocabulary(vocabulary: int) -> None:
    if int(vocabulary) < 2:
        raise GentoolError(f"dataset.source.vocabulary is {vocabulary} but must be at least 2; "
                           "set dataset.source.vocabulary=2000.")


def _to_cache(path: Path, loaded: VectorData) -> None:
    arrays = {"train": loaded.train.images.numpy(), "test": loaded.test.images.numpy(),
              "train_labels": loaded.train.labels.numpy(),
              "test_labels": loaded.test.labels.numpy(),
              "classes": np.asarray(loaded.class_names, dtype=str)}

    # Written beside its final name and renamed, so a killed run never leaves half a cache.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(temporary, path)
    except OSError as error:   # a read-only data_dir: the next run vectorises again
        temporary.unlink(missing_ok=True)
        log.warning("Could not cache the vectorised documents in %s: %s", path, error)


def _from_cache(path: Path) -> VectorData:
    with np.load(path, allow_pickle=False) as archive:
        classes = archive["classes"].tolist()
        return vector_data(archive["train"], [classes[i] for i in archive["train_labels"]],
                           archive["test"], [classes[i] for i in archive["test_labels"]])
