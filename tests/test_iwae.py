"""The VAE's training objectives (the beta-weighted ELBO with KL warm-up, and the IWAE bound of
`model.iwae_k`), its summary of evaluations, and the gated dense layer."""

import json
import math
from functools import partial

import pytest
import torch

from conftest import TINY, compose_config
from gentool.engine.step import StepContext
from gentool.errors import GentoolError
from gentool.losses.likelihoods import Bernoulli, Gaussian
from gentool.methods import build_method
from gentool.methods.vae import VAE
from gentool.nets.mlp import GatedLinear, MLPDecoder, MLPEncoder
from gentool.train import run_train


def tiny_vae(latent_dim=1, iwae_k=1, gated=False, **options) -> VAE:
    """x in {0,1}^2 (shape [1, 1, 2]); one linear layer each way (hidden=[])."""
    torch.manual_seed(0)
    return VAE(partial(MLPEncoder, hidden=[], gated=gated),
               partial(MLPDecoder, hidden=[], gated=gated), Bernoulli(), [1, 1, 2], [0.0, 1.0],
               latent_dim=latent_dim, iwae_k=iwae_k, **options)


X = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]).view(3, 1, 1, 2)


def _log_sigmoid(v: float) -> float:
    return -math.log1p(math.exp(-v))


def _hand_posterior(vae, x):
    """(mu, logvar) of the one-layer encoder (latent_dim 1) for x = (x0, x1)."""
    (we, be) = (vae.encoder.net[0].weight.tolist(), vae.encoder.net[0].bias.tolist())
    return (we[0][0] * x[0] + we[0][1] * x[1] + be[0],
            we[1][0] * x[0] + we[1][1] * x[1] + be[1])


def _hand_elbo_terms(vae, eps):
    """Mean recon -log p(x|z) at z = mu + sigma eps [3, 1] and mean closed-form
    KL = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2) over the 3 examples of X."""
    wd, bd = vae.decoder.net[0].weight.tolist(), vae.decoder.net[0].bias.tolist()
    recon, kl = 0.0, 0.0
    for b, x in enumerate(X.view(3, 2).tolist()):
        mu, logvar = _hand_posterior(vae, x)
        z = mu + math.exp(0.5 * logvar) * eps[b, 0].item()
        logits = [wd[j][0] * z + bd[j] for j in range(2)]
        recon -= sum(_log_sigmoid(l) if xj == 1.0 else _log_sigmoid(-l)
                     for l, xj in zip(logits, x))
        kl += 0.5 * (mu * mu + math.exp(logvar) - 1 - logvar)
    return recon / 3, kl / 3


def test_beta_is_warmed_up_linearly_over_kl_warmup_steps_then_held():
    assert [tiny_vae(beta=2.0, kl_warmup_steps=4).beta_at(s) for s in (0, 1, 2, 4, 10)] == \
        [0.0, 0.5, 1.0, 2.0, 2.0]
    assert [tiny_vae(beta=2.0).beta_at(s) for s in (0, 3)] == [2.0, 2.0]   # no warm-up


def test_the_elbo_training_loss_is_recon_plus_beta_at_the_step_times_kl_by_hand():
    """beta = 2 with 4 warm-up steps: the weight of the KL is 0.5 at step 1 and 2 from step 4 on;
    evaluation weighs it by beta itself."""
    vae = tiny_vae(beta=2.0, kl_warmup_steps=4)
    ctx = StepContext({"model": torch.optim.SGD(vae.parameters(), lr=0.0)})
    for step, weight in ((1, 0.5), (6, 2.0)):
        ctx.step = step
        torch.manual_seed(40 + step)
        metrics = vae.train_step((X, None), ctx)
        torch.manual_seed(40 + step)
        recon, kl = _hand_elbo_terms(vae, torch.randn(3, 1))    # the step's one draw per example
        assert kl > 0.01                                         # so its weight shows
        assert metrics["recon"].item() == pytest.approx(recon, rel=1e-5)
        assert metrics["kl"].item() == pytest.approx(kl, rel=1e-5)
        assert metrics["loss"].item() == pytest.approx(recon + weight * kl, rel=1e-5)
    torch.manual_seed(50)
    metrics = vae.eval_step((X, None))
    torch.manual_seed(50)
    recon, kl = _hand_elbo_terms(vae, torch.randn(3, 1))
    assert metrics["loss"].item() == pytest.approx(recon + 2.0 * kl, rel=1e-5)


def test_summarize_adds_the_elbo_and_its_bits_per_dimension_by_hand():
    means = {"loss": 40.0, "recon": 30.0, "kl": 4.0}
    # Bernoulli on 1 x 1 x 2 pixels: ELBO = -(30 + 4); bits/dim = 34 / (2 ln 2)
    summary = tiny_vae().summarize(means)
    assert summary == {**means, "elbo": -34.0,
                       "bits_per_dim": pytest.approx(34 / (2 * math.log(2)), rel=1e-6)}
    # A Gaussian density on 1 x 2 x 2 8-bit pixels in [0, 1] adds log2(256) = 8 bits per
    # dimension (gentool.methods.eight_bit_offset; 0 on data that are not 8-bit pixels).
    likelihood = Gaussian()
    likelihood.eight_bit_offset = 8.0
    gaussian = VAE(partial(MLPEncoder, hidden=[]), partial(MLPDecoder, hidden=[]), likelihood,
                   [1, 2, 2], [0.0, 1.0], latent_dim=1)
    assert gaussian.summarize(means)["bits_per_dim"] == \
        pytest.approx(34 / (4 * math.log(2)) + 8, rel=1e-6)


def _hand_bounds(vae, eps, beta=1.0):
    """IWAE_k per example of X, by scalar arithmetic from the one-layer encoder and decoder's
    weights and the standard-normal draws eps [k, 3, 1]:
    log w_i = log p(x|z_i) + beta * (log p(z_i) - log q(z_i|x)), bound = log mean_i w_i."""
    k = eps.shape[0]
    wd, bd = vae.decoder.net[0].weight.tolist(), vae.decoder.net[0].bias.tolist()
    bounds = []
    for b, x in enumerate(X.view(3, 2).tolist()):
        mu, logvar = _hand_posterior(vae, x)
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
