"""The variational autoencoder (Kingma & Welling 2014).

q(z|x) = N(mu(x), diag sigma^2(x)) from the encoder, prior p(z) = N(0, I), decoder likelihood
p(x|z) from the `loss/` group. Per example, in nats:

    recon = -log p(x | z),   z = mu + sigma * eps,  eps ~ N(0, I)   (reparameterisation)
    kl    = KL(q(z|x) || p(z)) = 0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    elbo  = -(recon + kl) <= log p(x);  the training loss is recon + beta * kl (beta-VAE).
"""

from __future__ import annotations

import contextlib
import math

import torch

from gentool.losses.likelihoods import Likelihood
from gentool.methods.base import Method
from gentool.options import NonNegativeFloat, NonNegativeInt, PositiveInt


def gaussian_kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class VAE(Method):
    accepts_losses = (Likelihood,)
    accepted_losses_hint = "a likelihood; use loss=bernoulli, loss=gaussian or loss=multinomial"

    def __init__(self, encoder, decoder, loss: Likelihood, data_shape, value_range,
                 latent_dim: PositiveInt = 20, beta: NonNegativeFloat = 1.0,
                 kl_warmup_steps: NonNegativeInt = 0, name: str = "vae"):
        super().__init__()
        loss.check_data_range(value_range)
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.value_range = tuple(value_range)
        self.beta = beta
        # Linear KL annealing from 0 to beta (Bowman et al. 2016) against posterior collapse.
        self.kl_warmup_steps = kl_warmup_steps
        self.loss = loss
        self.encoder = encoder(data_shape=self.data_shape, out_features=2 * latent_dim)
        self.decoder = decoder(latent_dim=latent_dim, data_shape=self.data_shape,
                               params_per_pixel=loss.params_per_pixel)

    @property
    def dims(self) -> int:
        return math.prod(self.data_shape)

    # -- capabilities ------------------------------------------------------------------------
    def posterior(self, x, autocast=contextlib.nullcontext):
        with autocast():
            mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return self.loss.mean(self.decoder(z))

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def decoder_params(self, z, autocast=contextlib.nullcontext):
        """The decoder's raw output for codes z: what the likelihood scores."""
        with autocast():
            return self.decoder(z)

    def log_likelihood(self, x, params):
        """log p(x | z) per example, in nats, from decoder_params(z)."""
        return -self.loss.loss(params, x)

    def bits_per_dim(self, nats: float) -> float:
        """A negative log-likelihood per example in nats, as bits per data dimension."""
        return float(self.loss.bits_per_dim(torch.tensor(nats), self.dims))

    def sample(self, n: int, labels=None, temperature: float = 1.0):
        device = next(self.parameters()).device
        return self.decode(temperature * torch.randn(n, self.latent_dim, device=device))

    # -- objective ---------------------------------------------------------------------------
    def terms(self, x, autocast=contextlib.nullcontext):
        """Per-example recon and kl (nats), and the decoder's output parameters; `autocast`
        wraps the networks' forward passes."""
        mu, logvar = self.posterior(x, autocast)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        params = self.decoder_params(z, autocast)
        return self.loss.loss(params, x), gaussian_kl_to_standard_normal(mu, logvar), params

    def summarize(self, means):
        nelbo = means["recon"] + means["kl"]
        return {**means, "elbo": -nelbo,
                "bits_per_dim": float(self.loss.bits_per_dim(torch.tensor(nelbo), self.dims))}

    def beta_at(self, step: int) -> float:
        if self.kl_warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, step / self.kl_warmup_steps)

    def train_step(self, batch, ctx):
        x, _ = batch
        recon, kl, params = self.terms(x, ctx.autocast)
        recon, kl = recon.mean(), kl.mean()
        loss = recon + self.beta_at(ctx.step) * kl
        metrics = {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
        if ctx.diagnostics:
            metrics["mse"] = self.loss.mean_squared_error(params, x)
        return {**metrics, **ctx.optimizer_step(loss, "model")}

    @torch.no_grad()
    def eval_step(self, batch):
        x, _ = batch
        recon, kl, params = self.terms(x)
        recon, kl = recon.mean(), kl.mean()
        return {"loss": recon + self.beta * kl, "recon": recon, "kl": kl,
                "mse": self.loss.mean_squared_error(params, x)}
