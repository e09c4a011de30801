"""`run_sample`: every mode and format from a trained checkpoint, and the capability errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, compose_config
from gentool.errors import GentoolError
from gentool.sample import counted, log_path, run_sample
from gentool.train import run_train


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for model in ("vae", "ae"):
        run_train(compose_config("train", [*TINY, f"model={model}", "model.latent_dim=4"]),
                  root / model)
    return {m: root / m / "checkpoints" / "last.pt" for m in ("vae", "ae")}


def sample(*overrides):
    return run_sample(compose_config("sample", ["device=cpu", *overrides]))


@pytest.mark.parametrize("mode,shape", [("sample", (8 * 10 - 8 + 2 * 4 + 2,) * 2),
                                        ("reconstruct", None), ("interpolate", None),
                                        ("traverse", None)])
def test_every_mode_writes_a_png_grid(checkpoints, tmp_path, mode, shape):
    out = sample(f"checkpoint={checkpoints['vae']}", f"mode={mode}", "n=16", "steps=5",
                 "scale=1", f"out={tmp_path}/grid.png")
    image = Image.open(out)
    assert image.format == "PNG"
    if mode == "sample":  # 16 images of 8x8 in a 4x4 grid with 2-pixel borders: 4*10+2 = 42
        assert image.size == (42, 42)
    if mode == "traverse":  # steps x steps
        assert image.size == (5 * 10 + 2,) * 2


def test_grids_are_enlarged_to_a_readable_size_by_nearest_neighbour(checkpoints, tmp_path):
    raw = np.asarray(Image.open(sample(f"checkpoint={checkpoints['vae']}", "n=16", "scale=1",
                                       f"out={tmp_path}/raw.png")))
    auto = np.asarray(Image.open(sample(f"checkpoint={checkpoints['vae']}", "n=16",
                                        f"out={tmp_path}/auto.png")))
    assert raw.shape == (42, 42)
    assert auto.shape == (42 * 13, 42 * 13)   # 13: the smallest factor reaching 512 pixels
    assert np.array_equal(auto[::13, ::13], raw) and np.array_equal(auto[12::13, 12::13], raw)
    three = Image.open(sample(f"checkpoint={checkpoints['vae']}", "n=16", "scale=3",
                              f"out={tmp_path}/three.png"))
    assert three.size == (126, 126)
    folder = sample(f"checkpoint={checkpoints['vae']}", "n=2", "format=folder",
                    f"out={tmp_path}/f")   # one file per image: the data's own size
    assert Image.open(folder / "000000.png").size == (8, 8)


def test_traverse_auto_varies_the_dimensions_with_the_largest_kl(checkpoints, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="gentool"):
        sample(f"checkpoint={checkpoints['vae']}", "mode=traverse", "steps=3",
               f"out={tmp_path}/t.png")
    assert "Traversing latent dimensions" in caplog.text and "largest mean KL" in caplog.text


def test_npy_format_holds_the_raw_samples_in_the_data_range(checkpoints, tmp_path):
    out = sample(f"checkpoint={checkpoints['vae']}", "n=5", "format=npy", f"out={tmp_path}/s.npy")
    array = np.load(out)
    assert array.shape == (5, 1, 8, 8) and array.dtype == np.float32
    assert 0.0 <= array.min() and array.max() <= 1.0


def test_without_out_the_default_file_follows_the_format(checkpoints, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for fmt, written in (("npy", "samples.npy"), ("folder", "samples"), ("grid", "samples.png")):
        out = sample(f"checkpoint={checkpoints['vae']}", "n=2", f"format={fmt}")
        assert out.resolve() == (tmp_path / written).resolve()
    assert sample(f"checkpoint={checkpoints['vae']}", "n=2").name == "samples.png"


def test_the_format_follows_out_unless_given(checkpoints, tmp_path):
    array = sample(f"checkpoint={checkpoints['vae']}", "n=3", f"out={tmp_path}/s.npy")
    assert np.load(array).shape == (3, 1, 8, 8)
    assert Image.open(sample(f"checkpoint={checkpoints['vae']}", "n=3",
                             f"out={tmp_path}/s.png")).format == "PNG"
    folder = sample(f"checkpoint={checkpoints['vae']}", "n=2", f"out={tmp_path}/f/")
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000001.png"]


@pytest.mark.parametrize("overrides,message", [
    (["format=npy", "out={tmp}/x.png"], r"format=npy writes a NumPy array but out=.*/x.png names "
                                        r"a .png file \(format=grid\); give out= a .npy file"),
    (["format=grid", "out={tmp}/x.npy"], r"format=grid writes one PNG but out=.*/x.npy names a "
                                         r".npy file \(format=npy\)"),
    (["format=grid", "out={tmp}/x.jpg"], r"out=.*/x.jpg names a .jpg file; give out= a .png"),
    (["format=folder", "out={tmp}/x.png"], r"format=folder writes a folder of PNGs but out="),
    (["out={tmp}/x.jpg"], r"out=.*/x.jpg names no format gentool sample writes"),
])
def test_a_format_that_out_contradicts_is_refused(checkpoints, tmp_path, overrides, message):
    given = [o.format(tmp=tmp_path) for o in overrides]
    with pytest.raises(GentoolError, match=message):
        sample(f"checkpoint={checkpoints['vae']}", *given)
    assert list(tmp_path.iterdir()) == []


def test_folder_format_writes_one_png_per_sample(checkpoints, tmp_path):
    out = sample(f"checkpoint={checkpoints['vae']}", "n=3", "format=folder", f"out={tmp_path}/f")
    files = sorted(p.name for p in out.iterdir())
    assert files == ["000000.png", "000001.png", "000002.png"]
    assert Image.open(out / files[0]).size == (8, 8)


def test_same_seed_same_samples(checkpoints, tmp_path):
    a = np.load(sample(f"checkpoint={checkpoints['vae']}", "format=npy", f"out={tmp_path}/a.npy"))
    b = np.load(sample(f"checkpoint={checkpoints['vae']}", "format=npy", f"out={tmp_path}/b.npy"))
    c = np.load(sample(f"checkpoint={checkpoints['vae']}", "format=npy", "seed=1",
                       f"out={tmp_path}/c.npy"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_log_counts_what_was_written_in_its_own_words(checkpoints, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="gentool"):
        sample(f"checkpoint={checkpoints['vae']}", "mode=traverse", "steps=1", "dims=[0,1]",
               f"out={tmp_path}/one.png")
    assert "Wrote 1 image (grid, mode=traverse)" in caplog.text
    assert counted(torch.zeros(64, 1, 8, 8)) == "64 images"
    assert counted(torch.zeros(1, 2)) == "1 point" and counted(torch.zeros(64, 2)) == "64 points"
    assert counted(torch.zeros(5, 6)) == "5 rows"   # vectors of 6 values


def test_interpolation_rows_start_and_end_at_the_test_images(checkpoints, tmp_path):
    out = sample(f"checkpoint={checkpoints['ae']}", "mode=interpolate", "n=2", "steps=3",
                 "format=npy", f"out={tmp_path}/i.npy")
    assert np.load(out).shape == (2 * 5, 1, 8, 8)  # 2 rows of start, 3 points, end


# digits has 359 test images: 179 interpolation rows of two each, or 359 reconstructions, and
# not one more.
@pytest.mark.parametrize("mode, most, shape, per_row", [
    ("interpolate", 179, (179 * 3, 1, 8, 8), "two per row"),
    ("reconstruct", 359, (359, 1, 8, 8), "one per image"),
])
def test_a_mode_takes_at_most_what_the_test_split_holds(checkpoints, tmp_path, mode, most, shape,
                                                         per_row):
    out = sample(f"checkpoint={checkpoints['ae']}", f"mode={mode}", f"n={most}", "steps=1",
                 "format=npy", f"out={tmp_path}/all.npy")
    assert np.load(out).shape == shape
    needed = 2 * (most + 1) if mode == "interpolate" else most + 1
    with pytest.raises(GentoolError, match=rf"^mode={mode} n={most + 1} needs {needed} test "
                                           rf"examples \({per_row}\), and dataset=digits has "
                                           rf"359 in its test split; use n={most} or fewer\.$"):
        sample(f"checkpoint={checkpoints['ae']}", f"mode={mode}", f"n={most + 1}",
               f"out={tmp_path}/more.png")
    assert not (tmp_path / "more.png").exists()


def test_a_test_split_too_small_for_one_row_suggests_the_modes_the_model_can_do():
    from gentool.methods import build_method
    from gentool.sample import _check_rows

    ae, vae = (build_method(compose_config("train", [f"model={m}"])) for m in ("ae", "vae"))
    # An autoencoder cannot sample: of its modes, reconstruct needs one test example.
    with pytest.raises(GentoolError, match=r"^mode=interpolate draws on test examples \(two per "
                                           r"row\), and dataset=d has 1 in its test split; use "
                                           r"mode=reconstruct\.$"):
        _check_rows(ae, "interpolate", 1, 1, "d")
    with pytest.raises(GentoolError, match=r"has 0 in its test split; use mode=sample or "
                                           r"mode=traverse\.$"):
        _check_rows(vae, "reconstruct", 1, 0, "d")
    with pytest.raises(GentoolError, match=r"has 0 in its test split; train on one with more\.$"):
        _check_rows(ae, "reconstruct", 1, 0, "d")


def test_an_autoencoder_cannot_sample_and_says_what_it_can_do(checkpoints, tmp_path):
    with pytest.raises(GentoolError, match="mode=sample needs a model that can sample.*"
                                           "model=ae cannot; use mode=interpolate or "
                                           "mode=reconstruct"):
        sample(f"checkpoint={checkpoints['ae']}", f"out={tmp_path}/x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("override,message", [
    ("format=gif", "format is 'gif' but must be one of grid, npy, folder; pick one, or leave "
                   "format= out"),
    ("mode=dream", "mode is 'dream' but must be one of classes, .*; e.g. mode=sample."),
    ("n=0", "n is 0 but must be an integer >= 1"),
    ("dims=[0,0]", "must name two different latent dimensions"),
    ("dims=[0]", r"dims=\[0\] must be auto .* or two latent dimensions"),
    ("dims=first", "dims='first' must be auto"),
    ("scale=0", "scale=0 must be auto .* or a whole factor >= 1"),
    ("scale=big", "scale=big must be auto"),
    ("steps=0", "steps is 0 but must be an integer >= 1"),
    ("labels=[1.5]", r"labels=\[1.5\] must be a non-empty list of class numbers \(integers\)"),
    ("labels=[]", r"labels=\[\] must be a non-empty list of class numbers"),
])
def test_bad_options_are_clear_errors(checkpoints, tmp_path, override, message):
    mode = ["mode=traverse"] if override.startswith(("dims", "steps")) else []
    with pytest.raises(GentoolError, match=message):
        sample(f"checkpoint={checkpoints['vae']}", *mode, override, f"out={tmp_path}/x.png")


def test_values_left_unset_are_refused_once_before_out_is_read(checkpoints, tmp_path,
                                                               check_complete_calls):
    sample(f"checkpoint={checkpoints['vae']}", f"out={tmp_path}/x.png")
    assert len(check_complete_calls) == 1
    with pytest.raises(GentoolError, match="needs out, which has no value; set it"):
        sample(f"checkpoint={checkpoints['vae']}", "out=???")


def test_missing_checkpoint_option_is_a_clear_error():
    with pytest.raises(GentoolError, match="needs a checkpoint"):
        sample()


def test_folder_format_refuses_a_file_path(checkpoints, tmp_path):
    (tmp_path / "taken").write_text("keep me")
    with pytest.raises(GentoolError, match="is a file"):
        sample(f"checkpoint={checkpoints['vae']}", "format=folder", f"out={tmp_path}/taken")
    assert (tmp_path / "taken").read_text() == "keep me"


def test_a_folder_output_goes_into_a_new_or_empty_folder_only(checkpoints, tmp_path):
    vae = f"checkpoint={checkpoints['vae']}"
    (tmp_path / "empty").mkdir()
    out = sample(vae, "n=2", f"out={tmp_path}/empty/")
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png"]
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    # A second output into the same folder would mix with the first: refused, nothing touched.
    with pytest.raises(GentoolError, match=r"out=.*empty/ already holds files \(e.g. "
                                           r"000000.png\).*; choose another out= or empty "
                                           r"that folder\.$"):
        sample(vae, "n=1", f"out={tmp_path}/empty/")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier


def test_a_folder_holding_other_files_is_refused_and_kept(checkpoints, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "000001.png").write_bytes(b"a data set's own image")
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(GentoolError, match="already holds files"):
        sample(f"checkpoint={checkpoints['vae']}", "n=2", f"out={folder}/")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert sorted(p.name for p in folder.iterdir()) == ["000001.png", "notes.txt"]
    assert (folder / "000001.png").read_bytes() == b"a data set's own image"


def test_out_dot_writes_the_working_folder_and_logs_beside_it(checkpoints, tmp_path,
                                                               monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    sample(f"checkpoint={checkpoints['vae']}", "n=2", "format=folder", "out=.")
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == ["000000.png", "000001.png"]
    assert log_path(Path("."), "folder") == (tmp_path / "here.log").resolve()


@pytest.mark.parametrize("out", ["checkpoints/", "checkpoints/x.png", "checkpoints/s/"])
def test_nothing_is_written_into_a_runs_checkpoints_folder(checkpoints, out):
    folder = checkpoints["vae"].parent
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(GentoolError, match=r"is inside .*checkpoints, the checkpoints folder of "
                                           r"a train run; choose another out="):
        sample(f"checkpoint={checkpoints['vae']}", "n=2", f"out={folder.parent}/{out}")
    assert sorted(p.name for p in folder.iterdir()) == before


@pytest.fixture(scope="module")
def gan_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan_runs")
    small = ["model.generator.channels=8", "model.discriminator.channels=8", "dataset.range=[-1,1]"]
    run_train(compose_config("train", [*TINY, "model=cgan", *small]), root / "cgan")
    run_train(compose_config("train", [*TINY, "model=gan", "dataset=ring"]), root / "ring")
    return {m: root / m / "checkpoints" / "last.pt" for m in ("cgan", "ring")}


def test_conditional_samples_follow_the_labels(gan_checkpoints, tmp_path):
    out = sample(f"checkpoint={gan_checkpoints['cgan']}", "labels=[3,3,7]", "format=npy",
                 f"out={tmp_path}/l.npy")
    array = np.load(out)
    assert array.shape == (3, 1, 8, 8) and -1 <= array.min() and array.max() <= 1
    # Same seed, so the same noise: only the label differs between these two draws.
    three, seven = (np.load(sample(f"checkpoint={gan_checkpoints['cgan']}", f"labels=[{c}]",
                                   "format=npy", f"out={tmp_path}/{c}.npy")) for c in (3, 7))
    assert not np.allclose(three, seven)


def test_classes_mode_draws_one_row_per_class(gan_checkpoints, tmp_path):
    out = sample(f"checkpoint={gan_checkpoints['cgan']}", "mode=classes", "nrow=4", "scale=1",
                 f"out={tmp_path}/c.png")
    assert Image.open(out).size == (4 * 10 + 2, 10 * 10 + 2)  # 4 per row, 10 classes of 8x8


def test_labels_on_an_unconditional_model_are_a_clear_error(checkpoints, gan_checkpoints,
                                                            tmp_path):
    for checkpoint in (checkpoints["vae"], gan_checkpoints["ring"]):
        with pytest.raises(GentoolError, match="labels= only applies to class-conditional"):
            sample(f"checkpoint={checkpoint}", "labels=[1]", f"out={tmp_path}/x.png")
    with pytest.raises(GentoolError, match="mode=classes needs a class-conditional model"):
        sample(f"checkpoint={checkpoints['vae']}", "mode=classes", f"out={tmp_path}/x.png")


def test_points_become_a_scatter_plot_or_an_array(gan_checkpoints, tmp_path):
    png = sample(f"checkpoint={gan_checkpoints['ring']}", "n=100", f"out={tmp_path}/p.png")
    assert Image.open(png).size == (554, 424)   # a plot of 320 pixels with axes and legend
    array = np.load(sample(f"checkpoint={gan_checkpoints['ring']}", "n=100", "format=npy",
                           f"out={tmp_path}/p.npy"))
    assert array.shape == (100, 2)
    with pytest.raises(GentoolError, match="format=folder writes images"):
        sample(f"checkpoint={gan_checkpoints['ring']}", "format=folder", f"out={tmp_path}/f")


def test_traverse_needs_a_prior_and_a_gan_cannot_interpolate(checkpoints, gan_checkpoints,
                                                             tmp_path):
    with pytest.raises(GentoolError, match="mode=traverse needs a model that can sample, and "
                                           "model=ae cannot; use mode=interpolate or "
                                           "mode=reconstruct"):
        sample(f"checkpoint={checkpoints['ae']}", "mode=traverse", f"out={tmp_path}/x.png")
    with pytest.raises(GentoolError, match="can encode and decode.*use mode=classes or "
                                           "mode=sample"):
        sample(f"checkpoint={gan_checkpoints['cgan']}", "mode=interpolate",
               f"out={tmp_path}/x.png")
