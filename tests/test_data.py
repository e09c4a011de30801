"""The data package through its real loaders, on tiny files in each real format; no network."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import gentool
from gentool.data import Data, build_data, cifar10, mnist
from gentool.data.batching import DeviceBatches
from gentool.data.digits import load_digits
from gentool.data.folder import load_folder
from gentool.data.frey_faces import load_frey_faces
from gentool.data.idx import read_idx
from gentool.data.splits import Split
from gentool.data.streaming import StreamingBatches, worker_message
from gentool.errors import GentoolError

from conftest import compose_config
from data_fixtures import (write_cifar10, write_frey_mat, write_idx, write_idx_set,
                           write_image_folder, write_mnist_idx)

CONFIGS = Path(gentool.__file__).parent / "configs" / "dataset"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def dataset_cfg(name: str, **overrides):
    """The packaged dataset/<name>.yaml, nested under `dataset` as Hydra composes it."""
    root = OmegaConf.create({"dataset": OmegaConf.load(CONFIGS / f"{name}.yaml")})
    for key, value in overrides.items():
        OmegaConf.update(root, f"dataset.{key}", value, merge=False)
    return root.dataset


def labelled_split(n: int, pixels: int = 3) -> Split:
    """n one-channel images whose pixels all equal their index, labelled with their index."""
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 1, pixels)
    return Split(images.contiguous(), torch.arange(n))


def take(iterator, count):
    return list(itertools.islice(iterator, count))


# --- sources -------------------------------------------------------------------------------------

def test_digits_are_uint8_8x8_with_fixed_split():
    data = load_digits("unused")
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (1, 8, 8)
    assert len(data.train.images) + len(data.test.images) == 1797
    assert len(data.test.images) == round(1797 * 0.2)
    assert data.train.labels.dtype == torch.int64 and int(data.train.labels.max()) == 9
    assert int(data.train.images.max()) == 255     # 16 -> 255
    assert torch.equal(load_digits("unused").test.images, data.test.images)
    from sklearn.datasets import load_digits as sklearn_digits
    raw = torch.from_numpy(sklearn_digits().images)
    assert set(torch.unique(data.train.images).tolist()) <= set(
        (raw.unique() * 255 / 16).round().int().tolist())


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_plain_and_gz(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", array, gz)), array)


def test_idx_gz_found_by_magic_bytes_without_suffix(tmp_path):
    path = write_idx(tmp_path / "x", np.ones((2, 2), np.uint8), gz=True).rename(tmp_path / "x")
    assert read_idx(path).shape == (2, 2)


def test_idx_bad_magic_and_truncation_name_the_file(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + bytes(20))
    with pytest.raises(GentoolError, match="train-images-idx3-ubyte.*not an IDX"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", np.zeros((4, 4), np.uint8))
    short.write_bytes(short.read_bytes()[:-3])
    with pytest.raises(GentoolError, match="short"):
        read_idx(short)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_torchvision_layout(tmp_path, gz):
    raw = write_mnist_idx(tmp_path, n_train=64, n_test=32, gz=gz)
    data = mnist.load_mnist(str(tmp_path), download=False)
    assert data.shape == (1, 28, 28) and data.num_classes == 10
    assert data.train.images.shape == (64, 1, 28, 28) and data.test.images.shape == (32, 1, 28, 28)
    assert data.train.images.dtype == torch.uint8
    assert torch.equal(data.test.labels, torch.arange(32) % 10)
    suffix = ".gz" if gz else ""
    stored = read_idx(raw / f"train-images-idx3-ubyte{suffix}")
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(stored))


def test_fashion_mnist_found_in_debian_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST_DIR", write_idx_set(tmp_path / "deb", gz=True))
    data = mnist.load_fashion_mnist(str(tmp_path / "empty"), download=False)
    assert data.train.images.shape == (64, 1, 28, 28) and data.class_names[9] == "Ankle boot"


def test_fashion_mnist_prefers_data_dir_over_debian(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST_DIR", write_idx_set(tmp_path / "deb", gz=True))
    write_mnist_idx(tmp_path / "data", n_train=16, n_test=8, name="FashionMNIST")
    assert len(mnist.load_fashion_mnist(str(tmp_path / "data"), download=False).train.images) == 16


def test_missing_files_without_download_name_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "nowhere")
    cases = [(mnist.load_mnist, tmp_path / "MNIST" / "raw"),
             (mnist.load_fashion_mnist, tmp_path / "FashionMNIST" / "raw"),
             (cifar10.load_cifar10, tmp_path / "cifar-10-batches-py")]
    for load, folder in cases:
        with pytest.raises(GentoolError) as error:
            load(str(tmp_path), download=False)
        assert str(folder) in str(error.value) and "download is false" in str(error.value)
    with pytest.raises(GentoolError, match="frey_rawface.mat.*roweis"):
        load_frey_faces(str(tmp_path))


def offline_torchvision(monkeypatch, name: str, folder_of):
    """Replace torchvision.datasets.<name> by one that behaves as torchvision's does offline: it
    makes the folder it downloads into (`folder_of(root)`), then fails to reach the mirror."""
    import urllib.error

    import torchvision.datasets

    def offline(self, root, train=True, download=False):
        Path(folder_of(root)).mkdir(parents=True, exist_ok=True)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    # Named as torchvision's class: the loaders name the folder after it (MNIST/raw).
    monkeypatch.setattr(torchvision.datasets, name, type(name, (), {"__init__": offline}))


@pytest.mark.parametrize("load,name,folder_of", [
    (mnist.load_mnist, "MNIST", lambda root: Path(root) / "MNIST" / "raw"),
    (cifar10.load_cifar10, "CIFAR10", lambda root: Path(root)),
])
def test_a_failed_download_leaves_no_folder_it_made(tmp_path, monkeypatch, load, name,
                                                    folder_of):
    offline_torchvision(monkeypatch, name, folder_of)
    with pytest.raises(GentoolError, match="could not be downloaded"):
        load(str(tmp_path / "data"), download=True)
    assert list(tmp_path.iterdir()) == []   # no data/, no data/MNIST/raw
    # Folders that were there before stay, and so does anything the attempt wrote.
    (tmp_path / "data").mkdir()
    with pytest.raises(GentoolError, match="could not be downloaded"):
        load(str(tmp_path / "data"), download=True)
    assert [p.name for p in tmp_path.iterdir()] == ["data"]
    assert list((tmp_path / "data").iterdir()) == []


def test_a_failed_download_keeps_what_it_wrote(tmp_path, monkeypatch):
    import torchvision.datasets

    def cut_off(self, root, train=True, download=False):
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"part of it")
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(torchvision.datasets, "MNIST", type("MNIST", (), {"__init__": cut_off}))
    with pytest.raises(GentoolError, match="could not be downloaded"):
        mnist.load_mnist(str(tmp_path / "data"), download=True)
    assert (tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()


def test_cifar10_reads_pickle_batches(tmp_path):
    write_cifar10(tmp_path, n_per_batch=8, n_test=6)
    data = cifar10.load_cifar10(str(tmp_path), download=False)
    assert data.shape == (3, 32, 32) and data.num_classes == 10
    assert data.train.images.shape == (40, 3, 32, 32) and data.test.images.shape == (6, 3, 32, 32)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert torch.equal(data.test.labels, torch.arange(6) % 10)
    # The first 1024 values of a row are the red plane: example i's red plane is all i.
    assert torch.equal(data.test.images[:, 0].amax(dim=(1, 2)), torch.arange(6, dtype=torch.uint8))
    assert data.class_names == [f"class{i}" for i in range(10)]


def test_cifar10_without_meta_uses_standard_names(tmp_path):
    write_cifar10(tmp_path, n_per_batch=2, n_test=2, meta=False)
    assert cifar10.load_cifar10(str(tmp_path), download=False).class_names[0] == "airplane"


def test_frey_faces_orientation_and_split(tmp_path):
    images = np.zeros((30, 28, 20), np.uint8)
    images[:, 3, 17], images[:, 25, 2] = 200, 100      # row 3 / column 17, row 25 / column 2
    write_frey_mat(tmp_path, images)
    data = load_frey_faces(str(tmp_path))
    assert data.shape == (1, 28, 20) and data.num_classes is None and data.train.labels is None
    assert len(data.train.images) == 27 and len(data.test.images) == 3
    for split in (data.train, data.test):
        assert (split.images[:, 0, 3, 17] == 200).all() and (split.images[:, 0, 25, 2] == 100).all()
        assert (split.images.sum(dim=(1, 2, 3)) == 300).all()


def test_folder_lists_images_recursively_and_reads_rgb_and_gray(tmp_path):
    root = write_image_folder(tmp_path, n=12)
    data = load_folder("unused", str(root), size=[16, 16], channels=3, test_fraction=0.25)
    assert data.shape == (3, 16, 16) and data.num_classes is None
    assert len(data.train) == 9 and len(data.test) == 3
    assert all(data.train[i].shape == (3, 16, 16) and data.train[i].dtype == torch.uint8
               for i in range(len(data.train)))
    gray = load_folder("unused", str(root), size=[8, 12], channels=1)
    assert gray.shape == (1, 8, 12) and gray.train[0].shape == (1, 8, 12)


def test_folder_centre_crops_to_target_aspect(tmp_path):
    # A wide image: red and blue margins around a green square centre.
    wide = np.zeros((30, 60, 3), np.uint8)
    wide[:, :15, 0], wide[:, 15:45, 1], wide[:, 45:, 2] = 255, 255, 255
    (tmp_path / "pics").mkdir()
    Image.fromarray(wide).save(tmp_path / "pics" / "wide.png")
    Image.fromarray(wide.transpose(1, 0, 2)).save(tmp_path / "pics" / "tall.png")
    data = load_folder("unused", str(tmp_path / "pics"), size=[8, 8], test_fraction=0.5)
    for image in (data.train[0], data.test[0]):
        assert image[1].min() == 255 and image[0].max() == 0 and image[2].max() == 0
    gray = load_folder("unused", str(tmp_path / "pics"), size=8, channels=1, test_fraction=0.5)
    assert abs(int(gray.train[0].float().mean()) - 150) <= 1       # L = 0.587 * 255 for green


def test_folder_missing_or_empty_is_one_sentence(tmp_path):
    with pytest.raises(GentoolError, match="does not exist; set dataset.source.path"):
        load_folder("unused", str(tmp_path / "nope"))
    (tmp_path / "README.md").write_text("x")   # a file: named as one, not as missing
    with pytest.raises(GentoolError, match=r"^dataset.source.path=.*README.md is a file, not a "
                                           r"folder; set dataset.source.path= to a folder of "
                                           r"images\.$"):
        load_folder("unused", str(tmp_path / "README.md"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(GentoolError, match="holds no"):
        load_folder("unused", str(tmp_path / "empty"))


def write_unreadable(folder: Path, good: int, garbage: int, truncated: int) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(good):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"g{i}.png")
    for i in range(garbage):
        (folder / f"bad{i}.png").write_bytes(b"no image" * i)
    for i in range(truncated):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            folder / f"cut{i}.jpg", quality=95)
        data = (folder / f"cut{i}.jpg").read_bytes()
        (folder / f"cut{i}.jpg").write_bytes(data[:len(data) // 3])


def test_folder_skips_unreadable_files_with_one_warning_each(tmp_path, caplog):
    write_unreadable(tmp_path / "pics", good=6, garbage=2, truncated=1)
    with caplog.at_level("WARNING", logger="gentool"):
        data = load_folder("unused", str(tmp_path / "pics"), size=8, test_fraction=0.2)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping")]
    assert sorted(skipped) == [f"Skipping {tmp_path}/pics/bad{i}.png: not a readable image "
                               f"(cannot identify image file '{tmp_path}/pics/bad{i}.png')"
                               for i in (0, 1)]
    assert "Skipped 2 of 9 image files that could not be read" in caplog.text
    assert len(data.train) + len(data.test) == 7           # the truncated file passes the header
    # ... and when drawn, it is named once and the next readable image takes its place.
    split = data.train if any(p.name == "cut0.jpg" for p in data.train.files) else data.test
    index = [p.name for p in split.files].index("cut0.jpg")
    caplog.clear()
    with caplog.at_level("WARNING", logger="gentool"):
        first, again = split[index], split[index]
    assert torch.equal(first, again) and first.shape == (3, 8, 8)
    assert caplog.text.count("Skipping") == 1 and "cut0.jpg: image file is truncated" in caplog.text


def test_folder_with_no_readable_image_is_one_sentence(tmp_path):
    write_unreadable(tmp_path / "pics", good=0, garbage=3, truncated=0)
    with pytest.raises(GentoolError, match="none of the 3 image files under .* can be read"):
        load_folder("unused", str(tmp_path / "pics"))


def test_a_worker_error_reaches_the_user_as_its_own_message(tmp_path):
    write_unreadable(tmp_path / "pics", good=0, garbage=0, truncated=4)
    data = load_folder("unused", str(tmp_path / "pics"), size=8, test_fraction=0.25)
    batches = StreamingBatches(data.train, batch_size=2, device="cpu", seed=0, num_workers=1)
    with pytest.raises(GentoolError) as error:
        next(batches.iter_batches())
    assert str(error.value).startswith("none of the 3 images of this split can be decoded")
    assert "Traceback" not in str(error.value) and "\n" not in str(error.value)
    assert worker_message(GentoolError("already plain")) == "already plain"


# --- DeviceBatches -------------------------------------------------------------------------------

def test_device_batches_resume_exactly_from_any_step():
    batches = DeviceBatches(labelled_split(50), batch_size=8, device="cpu", seed=3)
    assert len(batches) == 6
    reference = take(batches.iter_batches(), 20)
    for start in (1, 5, 6, 7, 13):
        resumed = take(batches.iter_batches(start_step=start), 20 - start)
        for (x, y), (rx, ry) in zip(reference[start:], resumed):
            assert torch.equal(x, rx) and torch.equal(y, ry)
    # Each epoch is a fresh permutation: no example twice within it, different order next epoch.
    first, second = (torch.cat([y for _, y in reference[e * 6:(e + 1) * 6]]) for e in (0, 1))
    assert len(first.unique()) == 48 and not torch.equal(first, second)
    assert all(len(y) == 8 for _, y in reference)                        # drop_last
    other_seed = take(DeviceBatches(labelled_split(50), 8, "cpu", seed=4).iter_batches(), 1)
    assert not torch.equal(other_seed[0][1], reference[0][1])


def test_device_batches_scale_to_value_range():
    split = Split(torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3), None)
    x, y = next(DeviceBatches(split, 1, "cpu", 0, value_range=(-1.0, 1.0)).epoch())
    assert y is None and x.dtype == torch.float32
    assert torch.allclose(x.flatten(), torch.tensor([-1.0, -0.6, 1.0]))
    x01, _ = next(DeviceBatches(split, 1, "cpu", 0).epoch())
    assert torch.allclose(x01.flatten(), torch.tensor([0.0, 0.2, 1.0]))


def test_static_binarisation_is_one_fixed_data_set():
    split = Split(torch.full((20, 1, 4, 4), 128, dtype=torch.uint8), None)
    one = torch.cat([x for x, _ in DeviceBatches(split, 8, "cpu", 0, binarize="static").epoch()])
    two = torch.cat([x for x, _ in DeviceBatches(split, 8, "cpu", 9, binarize="static").epoch()])
    assert torch.equal(one, two) and set(one.unique().tolist()) == {0.0, 1.0}
    again = torch.cat([x for x, _ in DeviceBatches(split, 8, "cpu", 0, binarize="static").epoch()])
    assert torch.equal(one, again)
    scaled, _ = next(DeviceBatches(split, 20, "cpu", 0, (-1.0, 1.0), binarize="static").epoch())
    assert torch.equal(scaled, one * 2 - 1)


def test_dynamic_binarisation_redraws_but_follows_torch_seed():
    split = Split(torch.full((16, 1, 4, 4), 128, dtype=torch.uint8), None)
    batches = DeviceBatches(split, 16, "cpu", 0, binarize="dynamic")
    torch.manual_seed(0)
    first, second = (x for x, _ in take(batches.iter_batches(), 2))
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first, second)
    torch.manual_seed(0)
    assert torch.equal(next(batches.iter_batches())[0], first)


def test_unknown_binarize_and_too_large_batch_are_user_errors():
    with pytest.raises(GentoolError, match="dataset.binarize"):
        DeviceBatches(labelled_split(4), 2, "cpu", 0, binarize="sometimes")
    with pytest.raises(GentoolError, match="trainer.batch_size"):
        DeviceBatches(labelled_split(4), 8, "cpu", 0)


def test_epoch_covers_every_example_once_in_order():
    batches = DeviceBatches(labelled_split(50), 8, "cpu", 0, shuffle=False, drop_last=False)
    assert len(batches) == 7
    passed = list(batches.epoch())
    assert [len(y) for _, y in passed] == [8] * 6 + [2]
    assert torch.equal(torch.cat([y for _, y in passed]), torch.arange(50))
    assert torch.allclose(torch.cat([x[:, 0, 0, 0] for x, _ in passed]), torch.arange(50) / 255)


# --- StreamingBatches ----------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [0, 2])
def test_streaming_batches_resume_exactly(tmp_path, workers):
    folder = load_folder("unused", str(write_image_folder(tmp_path, n=12)), size=[6, 6],
                         test_fraction=0.25)
    batches = StreamingBatches(folder.train, 3, "cpu", seed=5, num_workers=workers)
    assert len(batches) == 3          # 9 training images
    reference = [x for x, _ in take(batches.iter_batches(), 7)]
    resumed = [x for x, _ in take(batches.iter_batches(start_step=4), 3)]
    assert all(torch.equal(a, b) for a, b in zip(reference[4:], resumed))
    assert reference[0].shape == (3, 3, 6, 6) and reference[0].dtype == torch.float32
    # The same order as DeviceBatches over the same images.
    in_memory = Split(torch.stack([folder.train[i] for i in range(len(folder.train))]), None)
    device = [x for x, _ in take(DeviceBatches(in_memory, 3, "cpu", 5).iter_batches(), 7)]
    assert all(torch.equal(a, b) for a, b in zip(reference, device))
    evaluation = list(StreamingBatches(folder.test, 2, "cpu", 5, shuffle=False, drop_last=False,
                                       num_workers=workers).epoch())
    assert [len(x) for x, _ in evaluation] == [2, 1]
    # Evaluation code stops early (eval_examples); the next pass must still start from the top.
    take(batches.epoch(), 1)
    again = torch.cat([x for x, _ in batches.epoch()])
    assert torch.equal(again, torch.stack([folder.train[i] for i in range(9)]).float() / 255)


def test_streaming_static_binarisation_is_fixed(tmp_path):
    folder = load_folder("unused", str(write_image_folder(tmp_path, n=6)), size=[4, 4])
    streams = [StreamingBatches(folder.train, 2, "cpu", seed, binarize="static", num_workers=0)
               for seed in (0, 1)]
    draws = [torch.cat([x for x, _ in stream.epoch()]) for stream in streams]
    assert torch.equal(*draws) and set(draws[0].unique().tolist()) <= {0.0, 1.0}


# --- build_data and the configs ------------------------------------------------------------------

def test_every_dataset_config_has_the_same_keys():
    for path in CONFIGS.glob("*.yaml"):
        cfg = compose_config("train", [f"dataset={path.stem}"]).dataset
        common = {"name", "shape", "num_classes", "range", "binarize", "validation", "source"}
        # Image pairs (pix2pix) also say which channels are the input.
        pairs = {"input_channels"} | ({"pair"} if path.stem == "derived_pairs" else set())
        expected = common | pairs if path.stem in ("derived_pairs", "paired_folder") else common
        if path.stem in ("vectors", "text_folder", "newsgroups20"):   # and what values they hold
            expected = common | {"values"}
        assert set(cfg) == expected, path
        assert cfg.name == path.stem
        if path.stem == "derived_pairs":   # holds the data set it is derived from, composed
            assert cfg.source.source._target_.startswith("gentool.data.")
            assert cfg.pair.transform._target_.startswith("gentool.data.pairs.")
        else:
            assert cfg.source._target_.startswith("gentool.data.")


def test_build_data_digits_from_its_config():
    data = build_data(dataset_cfg("digits", range=[-1.0, 1.0]), "data", "cpu", 32, seed=0)
    assert isinstance(data, Data) and data.name == "digits" and data.shape == (1, 8, 8)
    assert data.num_classes == 10 and data.value_range == (-1.0, 1.0)
    x, y = next(data.train.iter_batches())
    assert x.shape == (32, 1, 8, 8) and x.min() == -1.0 and y.dtype == torch.int64
    assert sum(len(y) for _, y in data.test.epoch()) == 359


def test_build_data_refuses_mismatched_config(tmp_path):
    write_mnist_idx(tmp_path, n_train=8, n_test=4)
    cfg = dataset_cfg("mnist", shape=[3, 32, 32], **{"source.download": False})
    expected = (r"dataset.shape is \[3, 32, 32\] but mnist holds images of shape \[1, 28, 28\]; "
                r"set dataset.shape=\[1,28,28\]")
    with pytest.raises(GentoolError, match=expected):
        build_data(cfg, str(tmp_path), "cpu", 4, 0)
    with pytest.raises(GentoolError, match="MNIST is not in .*download is false"):
        build_data(cfg, str(tmp_path / "elsewhere"), "cpu", 4, 0)     # the source's own error
    with pytest.raises(GentoolError, match="dataset.num_classes=10"):
        build_data(dataset_cfg("digits", num_classes=None), "data", "cpu", 4, 0)
    for bad_range in ([1.0, 0.0], [0.0], ["a", 1.0]):
        with pytest.raises(GentoolError, match="dataset.range"):
            build_data(dataset_cfg("digits", range=bad_range), "data", "cpu", 4, 0)
    with pytest.raises(GentoolError, match="dataset.binarize"):
        build_data(dataset_cfg("digits", binarize="maybe"), "data", "cpu", 4, 0)


def test_build_data_folder_follows_dataset_shape(tmp_path):
    root = write_image_folder(tmp_path, n=8)
    with pytest.raises(GentoolError, match="dataset.source.path"):
        build_data(dataset_cfg("folder"), "data", "cpu", 2, 0)
    cfg = dataset_cfg("folder", shape=[1, 8, 4], **{"source.path": str(root),
                                                     "source.test_fraction": 0.25})
    data = build_data(cfg, "data", "cpu", 2, 0, num_workers=0)
    assert isinstance(data.train, StreamingBatches) and data.num_classes is None
    x, y = next(data.train.iter_batches())
    assert x.shape == (2, 1, 8, 4) and y is None


def test_build_data_resolves_data_dir_against_cwd_and_home(tmp_path, monkeypatch):
    write_frey_mat(tmp_path / "home" / "faces", n=10)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "home")
    for data_dir in ("~/faces", "faces"):
        data = build_data(dataset_cfg("frey_faces"), data_dir, "cpu", 3, 0)
        assert data.shape == (1, 28, 20) and len(data.train) == 3


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_real_fashion_mnist_from_debian(tmp_path):
    data = mnist.load_fashion_mnist(str(tmp_path), download=False)
    assert data.train.images.shape == (60000, 1, 28, 28) and len(data.test.images) == 10000
    assert data.num_classes == 10 and set(data.train.labels.unique().tolist()) == set(range(10))
