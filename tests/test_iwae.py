"""The IWAE training objective of the VAE (`model.iwae_k`) and the gated dense layer."""

import json
import math
from functools import partial

import pytest
import torch

from conftest import TINY, compose_config
from gentool.engine.step import StepContext
from gentool.errors import GentoolError
from gentool.losses.likelihoods import Bernoulli
from gentool.methods import build_method
from gentool.methods.vae import VAE
from gentool.nets.mlp import GatedLinear, MLPDecoder, MLPEncoder
from gentool.train import run_train


def tiny_vae(latent_dim=1, iwae_k=1, gated=False) -> VAE:
    """x in {0,1}^2 (shape [1, 1, 2]); one linear layer each way (hidden=[])."""
    torch.manual_seed(0)
    return VAE(partial(MLPEncoder, hidden=[], gated=gated),
               partial(MLPDecoder, hidden=[], gated=gated), Bernoulli(), [1, 1, 2], [0.0, 1.0],
               latent_dim=latent_dim, iwae_k=iwae_k)


X = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]).view(3, 1, 1, 2)


def _log_sigmoid(v: float) -> float:
    return -math.log1p(math.exp(-v))


def _hand_bounds(vae, eps, beta=1.0):
    """IWAE_k per example of X, by scalar arithmetic from the one-layer encoder and decoder's
    weights and the standard-normal draws eps [k, 3, 1]:
    log w_i = log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)), bound = log mean_i w_i."""
    k = eps.shape[0]
    (we, be), (wd, bd) = [(layer.weight.tolist(), layer.bias.tolist()) for layer in
                          (vae.encoder.net[0], vae.decoder.net[0])]
    bounds = []
    for b, x in enumerate(X.view(3, 2).tolist()):
        mu = we[0][0] * x[0] + we[0][1] * x[1] + be[0]
        logvar = we[1][0] * x[0] + we[1][1] * x[1] + be[1]
        log_w = []
        for i in range(k):
            z = mu + math.exp(0.5 * logvar) * eps[i, b, 0].item()
            logits = [wd[j][0] * z + bd[j] for j in range(2)]
            log_px_z = sum(_log_sigmoid(l) if xj == 1.0 else _log_sigmoid(-l)
                           for l, xj in zip(logits, x))
            log_pz = -0.5 * (z * z + math.log(2 * math.pi))
            log_qz = -0.5 * ((z - mu) ** 2 / math.exp(logvar) + logvar + math.log(2 * math.pi))
            log_w.append(log_px_z + beta * (log_pz - log_qz))
        top = max(log_w)
        bounds.append(top + math.log(sum(math.exp(w - top) for w in log_w) / k))
    return bounds


def test_iwae_bound_matches_a_hand_computation_with_explicit_log_weights():
    vae = tiny_vae()
    k = 4
    torch.manual_seed(123)
    bound = vae.iwae_terms(X, k, beta=1.0)[0]
    torch.manual_seed(123)
    eps = torch.randn(k, 3, 1)           # the draws iwae_terms takes, in the same order
    assert bound.tolist() == pytest.approx(_hand_bounds(vae, eps), rel=1e-5, abs=1e-5)


def test_the_iwae_training_loss_is_minus_the_mean_hand_bound_of_its_draws():
    vae = tiny_vae(iwae_k=3)
    ctx = StepContext({"model": torch.optim.SGD(vae.parameters(), lr=0.0)})
    torch.manual_seed(31)
    metrics = vae.train_step((X, None), ctx)
    torch.manual_seed(31)
    eps = torch.randn(3, 3, 1)           # the k=3 draws train_step takes, in the same order
    expected = -sum(_hand_bounds(vae, eps)) / 3
    assert metrics["loss"].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # During a KL warm-up the prior ratio of each log weight is scaled by beta_at(step):
    # kl_warmup_steps=4 at step 1 gives beta = 1 * 1/4.
    vae.kl_warmup_steps = 4
    ctx.step = 1
    torch.manual_seed(32)
    metrics = vae.train_step((X, None), ctx)
    torch.manual_seed(32)
    eps = torch.randn(3, 3, 1)
    expected = -sum(_hand_bounds(vae, eps, beta=0.25)) / 3
    assert metrics["loss"].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_k_1_is_the_elbo():
    vae = tiny_vae(latent_dim=2)
    # The one-sample bound is the ELBO's estimate with the same draw: recon + log q - log p.
    torch.manual_seed(5)
    bound, recon, kl, _ = vae.iwae_terms(X, 1, beta=1.0)
    torch.manual_seed(5)
    recon_elbo, kl_closed, _ = vae.terms(X)
    assert torch.equal(recon, recon_elbo) and torch.equal(kl, kl_closed)
    # ... whose mean over draws is the ELBO with the KL in closed form: E[log p - log q] = -KL.
    many = X.repeat(20000, 1, 1, 1)
    torch.manual_seed(6)
    with torch.no_grad():
        bound, recon, kl, _ = vae.iwae_terms(many, 1, beta=1.0)
    elbo = -(recon + kl)
    assert torch.allclose(bound.view(20000, 3).mean(0), elbo.view(20000, 3).mean(0), atol=0.03)
    # model.iwae_k=1 trains on exactly the ELBO: its loss is recon + beta * kl of the ELBO path.
    ctx = StepContext({"model": torch.optim.SGD(vae.parameters(), lr=0.0)})
    torch.manual_seed(7)
    metrics = vae.train_step((X, None), ctx)
    torch.manual_seed(7)
    recon_t, kl_t, _ = vae.terms(X)
    assert torch.equal(metrics["loss"], (recon_t.mean() + kl_t.mean()).detach())


def test_the_bound_does_not_decrease_with_k_on_a_fixed_model():
    vae = tiny_vae(latent_dim=2)
    repeats = 4000
    many = X.repeat(repeats, 1, 1, 1)
    torch.manual_seed(11)
    means, errors = [], []
    with torch.no_grad():
        for k in (1, 2, 5, 20, 100):
            values = vae.iwae_terms(many, k, beta=1.0)[0].view(repeats, 3).mean(1)
            means.append(values.mean().item())
            errors.append(values.std().item() / math.sqrt(repeats))
    for (a, ea), (b, eb) in zip(zip(means, errors), zip(means[1:], errors[1:])):
        assert b >= a - 3 * math.hypot(ea, eb), means
    assert means[-1] > means[0]


def test_training_with_iwae_k_reports_the_bound_as_loss(tmp_path):
    run_train(compose_config("train", [*TINY, "model=vae", "model.iwae_k=3",
                                       "model.encoder.gated=true",
                                       "model.decoder.gated=true",
                                       "model.encoder.activation=identity"]), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # The IWAE bound lies between the ELBO and log p(x): its loss is at most -ELBO (on average).
    # Evaluated on the same draws, log mean_i w_i >= mean_i log w_i; with this config and seed
    # the gap is about 0.2 nats (0.19 to 0.26 over seeds 0-2), where a loss that were the ELBO's
    # (recon + kl) would give a gap of 0.
    assert math.isfinite(metrics["test/loss"]) and metrics["test/elbo"] < 0
    assert metrics["test/loss"] <= -metrics["test/elbo"] - 0.05
    with pytest.raises(GentoolError, match="model.iwae_k is 0 but must be an integer >= 1"):
        build_method(compose_config("train", ["model=vae", "model.iwae_k=0"]))


def test_gated_linear_matches_a_hand_computation():
    torch.manual_seed(0)
    layer = GatedLinear(3, 2)
    x = torch.tensor([[0.5, -1.0, 2.0]])
    expected = []
    for j in range(2):
        h = sum(layer.linear.weight[j, i].item() * x[0, i].item() for i in range(3)) + \
            layer.linear.bias[j].item()
        g = sum(layer.gate.weight[j, i].item() * x[0, i].item() for i in range(3)) + \
            layer.gate.bias[j].item()
        expected.append(h / (1 + math.exp(-g)))
    assert layer(x)[0].tolist() == pytest.approx(expected, rel=1e-6)
    net = MLPEncoder([1, 28, 28], 80, hidden=[300, 300], activation="identity", gated=True)
    assert [type(m).__name__ for m in net.net] == \
        ["GatedLinear", "Identity", "GatedLinear", "Identity", "Linear"]
