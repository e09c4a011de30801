"""Likelihoods, reconstruction losses and the KL term against hand computations."""

import math

import pytest
import torch

from conftest import compose_config
from gentool.errors import GentoolError
from gentool.losses.likelihoods import MSE, Bernoulli, Gaussian, Multinomial
from gentool.methods import build_method
from gentool.methods.vae import gaussian_kl_to_standard_normal


def test_bernoulli_is_binary_cross_entropy_per_example():
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 3.0]]]])  # [B=2, C=1, H=1, W=2]
    x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(Bernoulli().loss(logits, x), by_hand, atol=1e-6)
    # example 0: -log(0.5) - log(1 - sigmoid(2))
    assert Bernoulli().loss(logits, x)[0].item() == pytest.approx(
        math.log(2) + math.log(1 + math.exp(2)), rel=1e-6)


def test_bernoulli_refuses_data_outside_unit_interval():
    with pytest.raises(GentoolError, match=r"dataset.range=\[0,1\]"):
        Bernoulli().check_data_range((-1.0, 1.0))
    Bernoulli().check_data_range((0.0, 1.0))


def test_gaussian_fixed_variance_matches_formula_and_torch():
    mu = torch.tensor([[[[0.2, 0.5, 0.9]]]])
    x = torch.tensor([[[[0.0, 0.5, 1.0]]]])
    sigma = 0.3
    loss = Gaussian(variance="fixed", sigma=sigma).loss(mu, x)
    by_hand = sum(0.5 * ((xi - mi) / sigma) ** 2 + math.log(sigma) + 0.5 * math.log(2 * math.pi)
                  for xi, mi in [(0.0, 0.2), (0.5, 0.5), (1.0, 0.9)])
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    reference = -torch.distributions.Normal(mu, sigma).log_prob(x).sum()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_gaussian_per_pixel_variance_reads_log_sigma_channels():
    mu = torch.tensor([[[[0.1]], [[0.7]]]])            # C=2
    log_sigma = torch.tensor([[[[-1.0]], [[0.5]]]])
    x = torch.tensor([[[[0.0]], [[1.0]]]])
    likelihood = Gaussian(variance="per_pixel")
    assert likelihood.params_per_pixel == 2
    loss = likelihood.loss(torch.cat([mu, log_sigma], dim=1), x)
    reference = -torch.distributions.Normal(mu, log_sigma.exp()).log_prob(x).sum()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert torch.equal(likelihood.mean(torch.cat([mu, log_sigma], dim=1)), mu)


def test_gaussian_shared_variance_is_a_trained_parameter():
    likelihood = Gaussian(variance="shared", sigma=0.5)
    assert [n for n, _ in likelihood.named_parameters()] == ["log_sigma"]
    loss = likelihood.loss(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))
    loss.sum().backward()
    # d/dlog_sigma [0.5 x^2 exp(-2 s) + s] = 1 - x^2 exp(-2 s) = 1 - 4 at sigma = 0.5
    assert likelihood.log_sigma.grad.item() == pytest.approx(1 - 4.0, rel=1e-5)


def test_gaussian_rejects_bad_options():
    with pytest.raises(GentoolError, match="variance"):
        Gaussian(variance="learned")
    with pytest.raises(GentoolError, match="sigma"):
        Gaussian(sigma=0.0)


def test_mse_sums_squared_error_per_example():
    y = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 0.0]]]])
    x = torch.tensor([[[[0.0, 0.0]]], [[[3.0, 0.0]]]])
    assert MSE().loss(y, x).tolist() == [5.0, 9.0]


def test_bits_per_dim_conversions():
    nats = torch.tensor([64 * math.log(2)])  # one bit per dimension over 64 dimensions
    assert Bernoulli().bits_per_dim(nats, 64).item() == pytest.approx(1.0)
    # A Gaussian density is the data's own until told the data are 8-bit pixels; on [0, 1] the
    # 8-bit convention then adds log2(256) = 8 bits per dimension.
    gaussian = Gaussian()
    assert gaussian.bits_per_dim(nats, 64).item() == pytest.approx(1.0)
    gaussian.eight_bit_offset = 8.0
    assert gaussian.bits_per_dim(nats, 64).item() == pytest.approx(9.0)


@pytest.mark.parametrize("dataset, offset", [
    (["dataset=mnist"], 8.0),                                  # 8-bit pixels in [0, 1]: log2 256
    (["dataset=digits", "dataset.range=[-1,1]"], 7.0),         # in [-1, 1]: log2(256 / 2)
    (["dataset=mnist", "dataset.binarize=dynamic"], 0.0),      # binarised: not 8-bit data
    (["dataset=vectors", "dataset.shape=[6]", "dataset.source.path=x"], 0.0),   # real values
    (["dataset=vectors", "dataset.shape=[6]", "dataset.source.path=x",
      "dataset.values=unit"], 0.0),                            # in [0, 1], but not pixels
    (["dataset=ring"], 0.0),                                   # 2-D points
])
def test_bits_per_dim_add_the_8_bit_offset_on_8_bit_images_only(dataset, offset):
    method = build_method(compose_config("train", ["model=vae", "loss=gaussian", *dataset]))
    dims = method.dims
    # One bit per dimension of the density, by hand: dims * ln 2 nats per example.
    assert method.bits_per_dim(dims * math.log(2)) == pytest.approx(1.0 + offset)
    assert method.summarize({"recon": dims * math.log(2), "kl": 0.0})["bits_per_dim"] == \
        pytest.approx(1.0 + offset)


def test_kl_to_standard_normal_matches_closed_form_and_torch():
    mu = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    kl = gaussian_kl_to_standard_normal(mu, logvar)
    # 0.5 * (mu^2 + var - 1 - log var), summed: dim 0 -> 0.125, dim 1 -> 0.5 * (1 + 4 - 1 - log 4)
    assert kl[0].item() == pytest.approx(0.125 + 0.5 * (4 - math.log(4)), rel=1e-6)
    assert kl[1].item() == pytest.approx(0.0, abs=1e-7)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(1), atol=1e-6)


def test_mean_squared_error_is_per_pixel_on_the_decoded_mean():
    logits = torch.zeros(1, 1, 1, 2)            # Bernoulli mean 0.5 everywhere
    x = torch.tensor([[[[1.0, 0.0]]]])
    assert Bernoulli().mean_squared_error(logits, x).item() == pytest.approx(0.25)
    assert MSE().mean_squared_error(torch.tensor([[[[0.5, 1.0]]]]), x).item() == \
        pytest.approx((0.25 + 1.0) / 2)


def test_multinomial_mean_squared_error_compares_word_probabilities_with_proportions():
    # Logits log(1), log(1), log(2) -> p = (1/4, 1/4, 1/2). Documents of counts (2, 0, 2) and
    # (0, 0, 0): proportions (1/2, 0, 1/2) and (0, 0, 0) (an empty document divides by 1).
    logits = torch.log(torch.tensor([[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]))
    counts = torch.tensor([[2.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    # squared errors (1/16, 1/16, 0) and (1/16, 1/16, 1/4): their mean over the 6 is 0.5 / 6
    expected = (1 / 16 + 1 / 16 + 0 + 1 / 16 + 1 / 16 + 1 / 4) / 6
    assert Multinomial().mean_squared_error(logits, counts).item() == \
        pytest.approx(expected, rel=1e-6)
