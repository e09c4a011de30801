"""ELBO, IWAE and the naive Monte-Carlo estimator against a linear-Gaussian VAE, whose marginal
likelihood is known in closed form: z ~ N(0, I), x | z ~ N(W z + b, s^2 I)  =>  x ~ N(b, W W^T + s^2 I).
"""

import math
from functools import partial

import pytest
import torch

from gentool.losses.likelihoods import Gaussian
from gentool.methods.vae import VAE
from gentool.metrics.likelihood import (diagonal_normal_log_density, elbo_and_iwae,
                                        importance_log_weights, log_mean_exp, naive_monte_carlo,
                                        standard_normal_log_density)
from gentool.nets.mlp import MLPDecoder, MLPEncoder

SIGMA = 0.5


def linear_gaussian_vae(weight: torch.Tensor, bias: torch.Tensor, posterior_scale: float = 1.0):
    """A VAE on 4 'pixels' ([1, 2, 2]) with a linear decoder W z + b and a linear encoder set to
    the exact posterior mean and the diagonal of the exact posterior covariance (times
    posterior_scale, to make the encoder deliberately imperfect)."""
    vae = VAE(partial(MLPEncoder, hidden=[]), partial(MLPDecoder, hidden=[]),
              Gaussian("fixed", SIGMA), data_shape=(1, 2, 2), value_range=(0.0, 1.0),
              latent_dim=2)
    covariance = torch.linalg.inv(torch.eye(2) + weight.T @ weight / SIGMA ** 2)
    gain = covariance @ weight.T / SIGMA ** 2              # mu(x) = gain (x - b)
    with torch.no_grad():
        vae.decoder.net[0].weight.copy_(weight)
        vae.decoder.net[0].bias.copy_(bias)
        encoder = vae.encoder.net[0]
        encoder.weight.zero_()
        encoder.weight[:2] = gain
        encoder.bias[:2] = -gain @ bias
        encoder.bias[2:] = torch.log(posterior_scale * covariance.diagonal())
    return vae.eval()


def exact_log_likelihood(weight, bias, x):
    marginal = torch.distributions.MultivariateNormal(
        bias.double(), covariance_matrix=(weight @ weight.T + SIGMA ** 2 * torch.eye(4)).double())
    return marginal.log_prob(x.flatten(1).double())


def draw(weight, bias, n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=generator)
    return (z @ weight.T + bias + SIGMA * torch.randn(n, 4, generator=generator)).view(n, 1, 2, 2)


def test_densities_match_torch_distributions():
    z, mu, logvar = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 3)
    expected = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    assert torch.allclose(diagonal_normal_log_density(z, mu, logvar), expected, atol=1e-5)
    assert torch.allclose(standard_normal_log_density(z),
                          torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1), atol=1e-5)


def test_log_mean_exp_by_hand():
    values = torch.tensor([[0.0, 1.0], [math.log(3.0), 2.0]])
    assert torch.allclose(log_mean_exp(values, dim=0),
                          torch.tensor([math.log(2.0), math.log((math.e + math.e ** 2) / 2)]))


def test_with_the_exact_posterior_every_importance_weight_is_the_likelihood():
    # Orthogonal columns make the exact posterior diagonal, so the encoder is exact and
    # log p(x|z) + log p(z) - log q(z|x) = log p(x) for every z.
    weight = torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    bias = torch.tensor([0.1, -0.2, 0.3, 0.0])
    vae = linear_gaussian_vae(weight, bias)
    x = draw(weight, bias, 16)
    log_w = importance_log_weights(vae, x, k=50, max_pairs=64)   # several chunks
    exact = exact_log_likelihood(weight, bias, x)
    assert log_w.shape == (50, 16)
    assert torch.allclose(log_w, exact.expand_as(log_w), atol=1e-4)


def test_iwae_and_naive_monte_carlo_converge_to_the_exact_likelihood():
    torch.manual_seed(0)
    weight = torch.tensor([[1.0, 0.5], [0.3, 1.5], [-0.8, 0.2], [0.4, -0.6]])
    bias = torch.tensor([0.1, -0.2, 0.3, 0.0])
    vae = linear_gaussian_vae(weight, bias, posterior_scale=1.5)   # correlated, inflated q
    x = draw(weight, bias, 32)
    exact = exact_log_likelihood(weight, bias, x).mean().item()

    elbo_1, iwae_1 = elbo_and_iwae(vae, x, k=1)
    assert elbo_1.shape == iwae_1.shape == (32,)     # one value per example
    assert torch.allclose(elbo_1, iwae_1)            # one sample: the two coincide
    elbo_x, iwae_x = elbo_and_iwae(vae, x, k=5000)
    assert elbo_x.shape == iwae_x.shape == (32,)
    assert bool((iwae_x >= elbo_x).all())           # log-mean-exp >= mean of the same weights
    # The ELBO in closed form, per example: q(z|x) = N(m, diag v) with m = C W^T (x - b) / s^2,
    # C = (I + W^T W / s^2)^-1 and v = 1.5 diag C (the inflated encoder), and D = 4 pixels:
    #   E_q log p(x|z) = -D/2 log(2 pi s^2) - (||x - b - W m||^2 + sum_j v_j ||W_:j||^2) / (2 s^2)
    #   KL(q || p)     = 1/2 sum_j (m_j^2 + v_j - 1 - log v_j)
    w64, b64, s2 = weight.double(), bias.double(), SIGMA ** 2
    c = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + w64.T @ w64 / s2)
    v = 1.5 * c.diagonal()
    residual = x.flatten(1).double() - b64                            # [32, 4]
    m = residual @ (c @ w64.T / s2).T                                  # [32, 2]
    expected_recon = (-2 * math.log(2 * math.pi * s2)
                      - ((residual - m @ w64.T).pow(2).sum(1) + (v * w64.pow(2).sum(0)).sum())
                      / (2 * s2))
    kl = 0.5 * (m.pow(2) + v - 1 - v.log()).sum(1)
    closed_elbo = expected_recon - kl
    # 5000 draws per example: the Monte-Carlo ELBO's standard error is about 0.01 nats here.
    assert torch.allclose(elbo_x, closed_elbo, atol=0.05)
    assert bool((closed_elbo < exact_log_likelihood(weight, bias, x)).all())
    elbo, iwae = elbo_x.mean().item(), iwae_x.mean().item()
    assert elbo == pytest.approx(closed_elbo.mean().item(), abs=0.01)
    assert elbo < exact - 0.05                       # an imperfect q leaves a visible gap
    assert iwae == pytest.approx(exact, abs=0.01)    # ... that IWAE closes
    assert iwae > elbo

    naive = naive_monte_carlo(vae, x, ks=[1, 100, 100_000], latent_dim=2)
    assert sorted(naive) == [1, 100, 100_000]
    assert all(estimate.shape == (32,) for estimate in naive.values())
    assert naive[100_000].mean().item() == pytest.approx(exact, abs=0.02)
    assert abs(naive[1].mean().item() - exact) > abs(naive[100_000].mean().item() - exact)


def test_naive_estimate_at_k_uses_exactly_the_first_k_prior_draws():
    weight, bias = torch.randn(4, 2), torch.zeros(4)
    vae = linear_gaussian_vae(weight, bias)
    x = draw(weight, bias, 3)
    torch.manual_seed(1)
    streamed = naive_monte_carlo(vae, x, ks=[7, 20], latent_dim=2)
    torch.manual_seed(1)
    alone = naive_monte_carlo(vae, x, ks=[7], latent_dim=2)
    assert torch.equal(streamed[7], alone[7])
    torch.manual_seed(1)
    z = torch.cat([torch.randn(7, 2), torch.randn(13, 2)])   # the stream: up to 7, then to 20
    log_px_z = torch.stack([vae.log_likelihood(x, vae.decoder_params(zi.expand(3, 2))) for zi in z])
    for k in (7, 20):
        assert torch.allclose(streamed[k], log_mean_exp(log_px_z[:k].double(), 0), atol=1e-5)
