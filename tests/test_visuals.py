"""The pictures themselves: integer upscaling, the scatter's axes and legend, the surface's colour
bar, the choice of latent dimensions to traverse, and what the HParams tab is given."""

import math

import pytest
import torch

from conftest import compose_config
from gentool.capabilities import Encodes, ScoresLikelihood
from gentool.engine import visuals
from gentool.engine.latent_dims import choose_dims, kl_per_dim
from gentool.errors import GentoolError
from gentool.train import hparams_of


def pixels(image):
    return {tuple(p) for p in (image * 255 + 0.5).to(torch.uint8).permute(1, 2, 0)
            .reshape(-1, 3).tolist()}


@pytest.mark.parametrize("size,scale,factor", [((82, 82), "auto", 7), ((52, 30), "auto", 10),
                                               ((600, 200), "auto", 1), ((82, 82), 1, 1),
                                               ((82, 82), 3, 3)])
def test_upscale_is_an_integer_factor_of_nearest_neighbour(size, scale, factor):
    image = torch.rand(1, *size)
    big = visuals.upscale(image, scale)
    assert big.shape == (1, size[0] * factor, size[1] * factor)
    assert torch.equal(big[:, ::factor, ::factor], image)


@pytest.mark.parametrize("scale", [0, -2, "big", 1.5, None, True])
def test_a_bad_scale_is_one_sentence(scale):
    with pytest.raises(GentoolError, match="must be auto .* or a whole factor >= 1"):
        visuals.check_scale(scale)


def test_the_scatter_has_axes_and_a_legend_of_the_classes_present():
    points = torch.randn(300, 2)
    labels = torch.arange(300) % 3
    image = visuals.scatter_image(points, labels, ["zero", "one", "two"],
                                  ("dimension 0", "dimension 1"), "title", size=320)
    assert image.shape[1] > 320 and image.shape[2] > 320 + 150   # room for ticks and a legend
    legend = image[:, :, 320 + 64:]   # right of the plot area: the legend only
    present = pixels(legend)
    assert {visuals.PALETTE[c] for c in range(3)} <= present
    assert visuals.PALETTE[3] not in present                      # only the classes present
    left_margin = image[:, 48:368, :60]                           # tick labels are drawn there
    assert (left_margin < 0.5).any()


def test_the_surface_has_a_colour_bar_of_the_scores():
    image = visuals.points_image(torch.randn(50, 2), torch.randn(50, 2), (-3, 3),
                                 surface=lambda p: p[:, 0], size=320)
    right = image[:, :, 64 + 320:]
    assert {visuals.COLD, visuals.WARM} <= pixels(right)          # both ends of the bar
    plain = visuals.points_image(torch.randn(50, 2), torch.randn(50, 2), (-3, 3), size=320)
    assert visuals.WARM not in pixels(plain[:, :, 64 + 320:])     # no surface, no bar


class HandMadePosterior(torch.nn.Module):
    """A posterior whose KL per latent dimension is set by hand: dims 2 and 5 are far from the
    prior (5 the farther), the others match it."""

    latent_dim = 6

    def posterior(self, x):
        mu = torch.zeros(len(x), self.latent_dim)
        mu[:, 2], mu[:, 5] = 1.0, 3.0
        return mu, torch.zeros_like(mu)

    def encode(self, x):
        return self.posterior(x)[0]

    def decoder_params(self, z):
        return z

    def log_likelihood(self, x, params):
        return torch.zeros(len(x))

    def bits_per_dim(self, nats):
        return nats


class Codes(torch.nn.Module):
    latent_dim = 4

    def encode(self, x):
        return x[:, :4] * torch.tensor([0.1, 5.0, 1.0, 0.0])


def test_dims_auto_takes_the_two_dimensions_with_the_largest_kl():
    model = HandMadePosterior()
    assert isinstance(model, ScoresLikelihood)
    chosen = choose_dims(model, torch.zeros(10, 3))
    assert chosen.dims == (5, 2)
    assert chosen.scores == pytest.approx((4.5, 0.5))             # mu^2 / 2 nats
    assert chosen.sentence() == ("Traversing latent dimensions 5 and 2 "
                                 "(largest mean KL, nats: 4.5, 0.5)")


class RowPosterior(torch.nn.Module):
    """q(z|x) read off the rows: x = [mu_0, mu_1, logvar_0, logvar_1]."""

    def posterior(self, x):
        return x[:, :2], x[:, 2:]


def test_kl_per_dim_averages_the_closed_form_kl_of_each_dimension_by_hand():
    # KL(N(mu, v) || N(0, 1)) = 0.5 (mu^2 + v - 1 - log v) per dimension, averaged over 3 rows
    # taken 2 at a time (the last batch holds 1).
    rows = [(0.5, 0.0, 1.0, 4.0), (0.0, -1.0, 0.25, 1.0), (1.0, 2.0, 2.0, 0.5)]   # mu, mu, v, v
    x = torch.tensor([[m0, m1, math.log(v0), math.log(v1)] for m0, m1, v0, v1 in rows])

    def kl(mu, v):
        return 0.5 * (mu * mu + v - 1 - math.log(v))

    expected = [sum(kl(r[d], r[2 + d]) for r in rows) / 3 for d in (0, 1)]
    result = kl_per_dim(RowPosterior(), x, batch_size=2)
    assert result.shape == (2,)
    assert result.tolist() == pytest.approx(expected, rel=1e-6)
    # dimension 0 written out: (0.125 + 0.5 (0.25 - 1 + log 4) + 0.5 (1 + 2 - 1 - log 2)) / 3
    assert result[0].item() == pytest.approx(
        (0.125 + 0.5 * (-0.75 + math.log(4)) + 0.5 * (2 - math.log(2))) / 3, rel=1e-6)


def test_dims_auto_without_a_posterior_takes_the_codes_that_vary_most():
    model = Codes()
    assert isinstance(model, Encodes) and not isinstance(model, ScoresLikelihood)
    chosen = choose_dims(model, torch.randn(200, 4))
    assert chosen.dims == (1, 2) and "variance" in chosen.sentence()


def test_hparams_name_the_model_by_its_config():
    hparams = hparams_of(compose_config("train", ["model=conv_vae"]))
    assert hparams["model"] == "conv_vae" and hparams["model.class"] == "VAE"
    assert "model.name" not in hparams


def test_hparams_name_the_loss_by_the_config_chosen_on_the_command_line():
    cfg = compose_config("train", ["experiment=dcgan_fashion_mnist", "loss=minimax"])
    assert hparams_of(cfg)["loss"] == "Minimax"   # composed outside a Hydra app: the class
    hparams = hparams_of(cfg, {"loss": "minimax", "model": "dcgan"})
    assert hparams["loss"] == "minimax" and hparams["loss.class"] == "Minimax"
