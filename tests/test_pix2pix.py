"""pix2pix: the networks, the paired data (derived and A|B folders), the losses by hand, and
training, sampling and evaluating end to end on tiny fixtures."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, compose_config
from data_fixtures import write_paired_folder
from gentool.data import build_data
from gentool.data.batching import DeviceBatches, PairBatch
from gentool.data.pairs import (colorize, derive_pairs, edge_map, edges, grey,
                                load_paired_folder, with_hole)
from gentool.data.splits import ImageData, Split
from gentool.errors import GentoolError
from gentool.evaluate import run_eval
from gentool.losses.adversarial import NonSaturating
from gentool.metrics.image_quality import psnr, ssim
from gentool.methods.pix2pix import Pix2Pix
from gentool.nets.unet import PatchDiscriminator, UNetGenerator
from gentool.sample import run_sample
from gentool.train import run_train

PIX2PIX = ["model=pix2pix", "model.generator.channels=8", "model.discriminator.channels=8"]


@pytest.mark.parametrize("size,patches", [((8, 8), (2, 2)), ((28, 28), (5, 5)),
                                          ((32, 32), (2, 2)), ((28, 20), (5, 3))])
def test_unet_keeps_the_size_and_patchgan_scores_patches(size, patches):
    g, d = UNetGenerator(1, (3, *size), channels=8), PatchDiscriminator(1, (3, *size), channels=8)
    x = torch.randn(2, 1, *size)
    y = g(x)
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1
    assert d(x, y).shape == (2, 1, *patches)


def test_unet_refuses_odd_sides():
    with pytest.raises(ValueError, match="divisible by 2"):
        UNetGenerator(1, (1, 7, 7))


class RecordingDiscriminator(torch.nn.Module):
    """Returns zero logits and remembers what it was shown."""

    def __init__(self, in_channels, data_shape):
        super().__init__()
        self.seen = []
        self.bias = torch.nn.Parameter(torch.zeros(()))

    def forward(self, inputs, outputs):
        self.seen.append(torch.cat([inputs, outputs], dim=1))
        return self.bias.expand(inputs.shape[0], 1, 2, 2)


def tiny_pix2pix():
    return Pix2Pix(lambda **kw: UNetGenerator(channels=4, **kw), RecordingDiscriminator,
                   NonSaturating(), data_shape=(2, 8, 8), value_range=(-1.0, 1.0),
                   input_channels=1, l1_weight=100.0)


def test_discriminator_sees_input_then_candidate_on_the_channels():
    model = tiny_pix2pix()
    inputs, targets = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    outputs = torch.rand(2, 1, 8, 8)
    model.discriminator_loss(inputs, targets, outputs)
    real_pair, fake_pair = model.discriminator.seen
    assert torch.equal(real_pair, torch.cat([inputs, targets], 1))
    assert torch.equal(fake_pair, torch.cat([inputs, outputs], 1))


def test_generator_loss_is_adversarial_plus_weighted_l1_by_hand():
    model = tiny_pix2pix()
    inputs = torch.zeros(1, 1, 8, 8)
    targets = torch.zeros(1, 1, 8, 8)
    outputs = torch.full((1, 1, 8, 8), 0.25)
    total, adversarial, l1 = model.generator_loss(inputs, targets, outputs)
    # D's logits are 0: non-saturating L_G = 0.5 softplus(-0) = 0.5 ln 2; L1 = 0.25.
    assert adversarial.item() == pytest.approx(0.5 * np.log(2))
    assert l1.item() == pytest.approx(0.25)
    assert total.item() == pytest.approx(0.5 * np.log(2) + 100 * 0.25)


def test_pair_batches_carry_inputs_targets_and_labels():
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    derived = derive_pairs(ImageData(Split(images, torch.arange(4)), Split(images[:2], None),
                                     (1, 8, 8), 4), edges)
    assert derived.shape == (2, 8, 8)
    batch = next(DeviceBatches(derived.train, 2, "cpu", seed=0, shuffle=False).iter_batches())
    assert isinstance(batch, PairBatch)
    assert torch.equal(batch.targets * 255, images[:2].float())
    assert torch.equal(batch.inputs * 255, edge_map(images[:2]).float())
    assert batch.labels.tolist() == [0, 1]


def test_edge_map_marks_a_step_edge():
    image = torch.zeros(1, 1, 6, 6, dtype=torch.uint8)
    image[..., 3:] = 255                     # a vertical step between columns 2 and 3
    edges = edge_map(image)
    assert edges.dtype == torch.uint8 and set(edges.unique().tolist()) == {0, 255}
    assert (edges[0, 0, :, 2:4] == 255).all() and (edges[0, 0, :, :1] == 0).all()


def test_grey_is_the_luma_and_holes_are_fixed_per_image():
    rgb = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert grey(rgb).item() == pytest.approx(0.299 * 255)
    images = torch.full((3, 1, 8, 8), 200, dtype=torch.uint8)
    holes = with_hole(images)
    assert torch.equal(holes, with_hole(images))
    assert ((holes == 0).flatten(1).sum(1) == 16).all()       # a 4x4 hole in each 8x8 image


def test_pair_layout_follows_the_source():
    def layout(*overrides):
        dataset = compose_config("train", ["dataset=derived_pairs", *overrides]).dataset
        return list(dataset.shape), dataset.input_channels, dataset.num_classes

    assert layout("dataset@dataset.source=fashion_mnist") == ([2, 28, 28], 1, 10)
    assert layout("dataset@dataset.source=cifar10", "dataset/pair=colorize") == ([4, 32, 32], 1, 10)
    assert layout("dataset@dataset.source=cifar10", "dataset/pair=inpaint")[:2] == ([6, 32, 32], 3)
    with pytest.raises(GentoolError, match="needs a colour data set"):
        colorize(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_paired_folder_names_a_file_or_a_missing_path(tmp_path):
    with pytest.raises(GentoolError, match="^No folder at .*nope; give the pix2pix folder"):
        load_paired_folder(str(tmp_path), str(tmp_path / "nope"), (16, 16))
    (tmp_path / "pair.png").write_bytes(b"x")
    with pytest.raises(GentoolError, match=r"^dataset.source.path=.*pair.png is a file, not a "
                                           r"folder; give the pix2pix folder with "):
        load_paired_folder(str(tmp_path), str(tmp_path / "pair.png"), (16, 16))


def test_paired_folder_reads_a_and_b_in_either_direction(tmp_path):
    folder = write_paired_folder(tmp_path)
    forward = load_paired_folder(str(tmp_path), str(folder), (16, 16))
    backward = load_paired_folder(str(tmp_path), str(folder), (16, 16), direction="BtoA")
    assert forward.shape == (6, 16, 16)
    assert len(forward.train.inputs) == 6 and len(forward.test.inputs) == 3   # test/ folder
    a, b = forward.train.inputs[0].int(), forward.train.targets[0].int()
    assert torch.equal(a + b, torch.full_like(a, 255))           # B is A inverted
    assert torch.equal(backward.train.inputs[0], forward.train.targets[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix2pix")
    run_train(compose_config("train", [*TINY, *PIX2PIX, "dataset=derived_pairs",
                                       "dataset@dataset.source=digits", "dataset/pair=edges"]),
              root / "edges")
    folder = write_paired_folder(root)
    run_train(compose_config("train", [*TINY, *PIX2PIX, "dataset=paired_folder",
                                       f"dataset.source.path={folder}",
                                       "dataset.shape=[6,16,16]", "trainer.batch_size=4"]),
              root / "folder")
    return root


def test_translate_mode_draws_input_output_target_rows(trained, tmp_path):
    out = run_sample(compose_config("sample", [
        "device=cpu", f"checkpoint={trained}/edges/checkpoints/last.pt", "mode=translate", "n=4",
        "scale=1", f"out={tmp_path}/rows.png"]))
    assert Image.open(out).size == (3 * 10 + 2, 4 * 10 + 2)      # 3 columns of 8x8, 4 rows


def test_translate_mode_takes_at_most_the_test_pairs(trained, tmp_path):
    with pytest.raises(GentoolError, match=r"^mode=translate n=4 needs 4 test examples \(one per "
                                           r"pair\), and dataset=paired_folder has 3 in its test "
                                           r"split; use n=3 or fewer\.$"):
        run_sample(compose_config("sample", [
            "device=cpu", f"checkpoint={trained}/folder/checkpoints/last.pt", "mode=translate",
            "n=4", f"out={tmp_path}/rows.png"]))


def test_translate_mode_translates_the_users_images(trained, tmp_path):
    for i in range(2):
        Image.fromarray(np.full((30, 30), 60 * i, np.uint8)).save(tmp_path / f"sketch{i}.png")
    out = run_sample(compose_config("sample", [
        "device=cpu", f"checkpoint={trained}/edges/checkpoints/last.pt", "mode=translate",
        f"input={tmp_path}", "format=npy", f"out={tmp_path}/out.npy"]))
    assert np.load(out).shape == (2, 1, 8, 8)
    with pytest.raises(GentoolError, match="neither an image file nor a folder"):
        run_sample(compose_config("sample", [
            "device=cpu", f"checkpoint={trained}/edges/checkpoints/last.pt", "mode=translate",
            f"input={tmp_path}/missing"]))


def test_eval_measures_translations(trained, tmp_path):
    metrics = run_eval(compose_config("eval", [
        "device=cpu", f"checkpoint={trained}/edges/checkpoints/last.pt", f"data_dir={tmp_path}",
        "n_samples=64", "classifier_steps=10"]))
    assert {"eval/l1", "eval/psnr", "eval/ssim", "eval/fd", "eval/fd_real"} <= set(metrics)
    unlabelled = run_eval(compose_config("eval", [
        "device=cpu", f"checkpoint={trained}/folder/checkpoints/last.pt", f"data_dir={tmp_path}"]))
    assert {"eval/l1", "eval/psnr", "eval/ssim"} == set(unlabelled)
    record = json.loads((trained / "folder" / "metrics.json").read_text())
    assert "eval/ssim" in record


def test_pix2pix_needs_pairs():
    with pytest.raises(GentoolError, match="needs image pairs"):
        run_train(compose_config("train", [*TINY, *PIX2PIX, "dataset=digits"]), "/tmp/unused")


def test_psnr_and_ssim_by_hand():
    a = torch.zeros(1, 1, 12, 12)
    b = torch.full((1, 1, 12, 12), 0.1)                     # MSE 0.01 -> 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0)
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(ssim(x, x), torch.ones(2, dtype=torch.float64))
    # Constant images: SSIM = (2 a b + C1) / (a^2 + b^2 + C1) (the variance terms cancel).
    c1 = 0.01 ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1)
    value = ssim(torch.full((1, 1, 12, 12), 0.2), torch.full((1, 1, 12, 12), 0.6))
    assert value.item() == pytest.approx(expected)


def _hand_ssim_index(xs, ys, ws):
    """The SSIM index of one window: values xs, ys with weights ws (summing to 1);
    weighted means, (biased) variances and covariance, C1 = 0.01^2, C2 = 0.03^2."""
    mx = sum(w * a for w, a in zip(ws, xs))
    my = sum(w * b for w, b in zip(ws, ys))
    vx = sum(w * (a - mx) ** 2 for w, a in zip(ws, xs))
    vy = sum(w * (b - my) ** 2 for w, b in zip(ws, ys))
    cov = sum(w * (a - mx) * (b - my) for w, a, b in zip(ws, xs, ys))
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (2 * mx * my + c1) * (2 * cov + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def test_ssim_of_non_constant_images_by_hand():
    # A 2x2 image uses a 2x2 window; its Gaussian weights at offsets -0.5 and 0.5 are equal, so
    # the one valid position weighs each pixel 1/4.
    x = [0.2, 0.4, 0.6, 0.8]
    y = [0.9, 0.3, 0.5, 0.1]
    # means 0.5 and 0.45, variances 0.05 and 0.0875, covariance -0.055 (a negative structure).
    expected = _hand_ssim_index(x, y, [0.25] * 4)
    assert expected == pytest.approx(
        (2 * 0.5 * 0.45 + 1e-4) * (2 * -0.055 + 9e-4) / ((0.25 + 0.2025 + 1e-4) * (0.1375 + 9e-4)))
    value = ssim(torch.tensor(x).view(1, 1, 2, 2), torch.tensor(y).view(1, 1, 2, 2))
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # Anti-correlated images of equal mean and variance: the structure term is (C2 - 2 var) /
    # (2 var + C2), about -1; C2 keeps it off exactly -1.
    flipped = ssim(torch.tensor(x).view(1, 1, 2, 2), torch.tensor(x[::-1]).view(1, 1, 2, 2))
    assert flipped.item() == pytest.approx((9e-4 - 0.1) / (0.1 + 9e-4), rel=1e-6)
    # A 3x4 image uses a 3x3 window (its smaller side) with weights g_i g_j, g = (e, 1, e) /
    # (1 + 2e), e = exp(-1 / (2 * 1.5^2)), at two valid positions (columns 0-2 and 1-3); SSIM is
    # the mean of their two indices.
    e = math.exp(-1 / (2 * 1.5 ** 2))
    g = [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)]
    a = [[0.1, 0.5, 0.2, 0.7], [0.9, 0.4, 0.3, 0.0], [0.6, 0.8, 0.1, 0.2]]
    b = [[0.2, 0.4, 0.4, 0.5], [0.7, 0.5, 0.1, 0.3], [0.5, 0.9, 0.3, 0.0]]
    indices = []
    for left in (0, 1):
        cells = [(i, left + j) for i in range(3) for j in range(3)]
        ws = [g[i] * g[c - left] for i, c in cells]
        indices.append(_hand_ssim_index([a[i][c] for i, c in cells],
                                        [b[i][c] for i, c in cells], ws))
    value = ssim(torch.tensor(a).view(1, 1, 3, 4), torch.tensor(b).view(1, 1, 3, 4))
    assert value.item() == pytest.approx(sum(indices) / 2, rel=1e-6)
