"""The variational autoencoder (Kingma & Welling 2014).

q(z|x) = N(mu(x), diag sigma^2(x)) from the encoder, prior p(z) = N(0, I), decoder likelihood
p(x|z) from the `loss/` group. Per example, in nats:

    recon = -log p(x | z),   z = mu + sigma * eps,  eps ~ N(0, I)   (reparameterisation)
    kl    = KL(q(z|x) || p(z)) = 0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)
    elbo  = -(recon + kl) <= log p(x);  the training loss is recon + beta * kl (beta-VAE).

With `iwae_k` = k > 1 the loss is instead the negative k-sample importance-weighted bound
(IWAE, Burda et al. 2015), tighter than the ELBO and -> -log p(x) as k grows:

    log w_i = log p(x | z_i) + beta * (log p(z_i) - log q(z_i | x)),   z_i ~ q(z|x), i = 1..k
    loss    = -log (1/k) sum_i w_i        (logsumexp; beta is 1 after any KL warm-up)

k = 1 keeps the ELBO above (the KL in closed form), as its single-sample estimate has the same
expectation with more variance.
"""

from __future__ import annotations

import contextlib
import math

import torch

from gentool.losses.likelihoods import Likelihood
from gentool.methods.base import Method
from gentool.metrics.likelihood import diagonal_normal_log_density, standard_normal_log_density
from gentool.options import NonNegativeFloat, NonNegativeInt, PositiveInt


def gaussian_kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class VAE(Method):
    accepts_losses = (Likelihood,)
    accepted_losses_hint = "a likelihood"   # check_loss_fits lists the fitting ones

    def __init__(self, encoder, decoder, loss: Likelihood, data_shape, value_range,
                 latent_dim: PositiveInt = 20, beta: NonNegativeFloat = 1.0,
                 kl_warmup_steps: NonNegativeInt = 0, iwae_k: PositiveInt = 1,
                 name: str = "vae"):
        super().__init__()
        loss.check_data_range(value_range)
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.value_range = tuple(value_range)
        self.beta = beta
        # Linear KL annealing from 0 to beta (Bowman et al. 2016) against posterior collapse.
        self.kl_warmup_steps = kl_warmup_steps
        # Importance samples per example of the training bound (1: the ELBO).
        self.iwae_k = iwae_k
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

    def log_weights(self, x, k: int, autocast=contextlib.nullcontext):
        """For k reparameterised draws z_i ~ q(z|x) per example: log p(x|z_i) [k, B],
        log p(z_i) - log q(z_i|x) [k, B], the decoder outputs of the first draw [B, ...], and
        the posterior (mu, logvar)."""
        mu, logvar = self.posterior(x, autocast)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, device=mu.device,
                                                       dtype=mu.dtype)          # [k, B, D]
        params = self.decoder_params(z.flatten(0, 1), autocast)
        repeated = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px_z = -self.loss.loss(params, repeated).view(k, -1)
        log_ratio = standard_normal_log_density(z) - diagonal_normal_log_density(z, mu, logvar)
        return log_px_z, log_ratio, params[:x.shape[0]], (mu, logvar)

    def iwae_terms(self, x, k: int, beta: float, autocast=contextlib.nullcontext):
        """Per-example IWAE_k bound [B] (its log weights' prior term scaled by beta), the mean
        recon over the draws and the closed-form kl [B] each, and the first draw's decoder
        outputs."""
        log_px_z, log_ratio, params, (mu, logvar) = self.log_weights(x, k, autocast)
        bound = torch.logsumexp(log_px_z + beta * log_ratio, dim=0) - math.log(k)
        return bound, -log_px_z.mean(dim=0), gaussian_kl_to_standard_normal(mu, logvar), params

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
        if self.iwae_k > 1:
            bound, recon, kl, params = self.iwae_terms(x, self.iwae_k, self.beta_at(ctx.step),
                                                       ctx.autocast)
            loss, recon, kl = -bound.mean(), recon.mean(), kl.mean()
        else:
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
        if self.iwae_k > 1:   # the loss is the bound the model trains on
            bound, recon, kl, params = self.iwae_terms(x, self.iwae_k, self.beta)
            loss, recon, kl = -bound.mean(), recon.mean(), kl.mean()
        else:
            recon, kl, params = self.terms(x)
            recon, kl = recon.mean(), kl.mean()
            loss = recon + self.beta * kl
        return {"loss": loss, "recon": recon, "kl": kl,
                "mse": self.loss.mean_squared_error(params, x)}
