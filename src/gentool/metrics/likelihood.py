"""Estimates of log p(x) for latent-variable models with a tractable p(x|z) and prior N(0, I).

A model is anything with `posterior(x) -> (mu, logvar)` (a diagonal Gaussian q(z|x)),
`decoder_params(z)` (the decoder's raw output for codes [N, D]) and `log_likelihood(x, params)`
(log p(x|z) [N] in nats from those outputs); the VAE has all three.

With log weights  log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x),  z_i ~ q(z|x):

    ELBO      = mean_i log w_i                        (a lower bound on log p(x))
    IWAE_k    = log (1/k) sum_i w_i                   (Burda et al. 2015; tighter, -> log p(x))

The naive Monte-Carlo estimator ignores the encoder: log (1/k) sum_i p(x|z_i) with z_i ~ p(z).
It is consistent too, but almost every prior draw explains a given x badly, so it needs
astronomically many samples: the argument for amortised inference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(dim=-1)


def diagonal_normal_log_density(z: torch.Tensor, mu: torch.Tensor,
                                logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(dim=-1)


@torch.no_grad()
def importance_log_weights(model, x: torch.Tensor, k: int, max_pairs: int = 32768) -> torch.Tensor:
    """log w [k, B] for k posterior samples per example, at most max_pairs decoded at a time."""
    mu, logvar = model.posterior(x)
    std = torch.exp(0.5 * logvar)
    chunk = max(1, max_pairs // x.shape[0])
    rows = []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        z = mu + std * torch.randn(c, *mu.shape, device=mu.device, dtype=mu.dtype)   # [c, B, D]
        flat_z = z.flatten(0, 1)
        flat_x = x.unsqueeze(0).expand(c, *x.shape).flatten(0, 1)
        log_px_z = model.log_likelihood(flat_x, model.decoder_params(flat_z)).view(c, -1)
        rows.append(log_px_z + standard_normal_log_density(z)
                    - diagonal_normal_log_density(z, mu, logvar))
    return torch.cat(rows).double()


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


@torch.no_grad()
def elbo_and_iwae(model, x: torch.Tensor, k: int, max_pairs: int = 32768):
    """Per-example (ELBO, IWAE_k bound) [B] each, in nats, from the same k samples."""
    log_w = importance_log_weights(model, x, k, max_pairs)
    return log_w.mean(dim=0), log_mean_exp(log_w, dim=0)


@torch.no_grad()
def naive_monte_carlo(model, x: torch.Tensor, ks: Sequence[int], latent_dim: int,
                      max_pairs: int = 32768) -> dict[int, torch.Tensor]:
    """Per-example log (1/k) sum_{i<=k} p(x|z_i), z_i ~ N(0, I), for each k in `ks` [B] each.

    One stream of prior draws serves every k (the estimate at k uses its first k draws) and every
    example (z does not depend on x), so the cost is max(ks) decoder passes, not B * max(ks):
    each decoded draw is scored against every example.
    """
    ks = sorted(set(int(k) for k in ks))
    batch, device = x.shape[0], x.device
    chunk = max(1, max_pairs // batch)
    running = torch.full((batch,), -math.inf, dtype=torch.float64, device=device)
    estimates: dict[int, torch.Tensor] = {}
    drawn, wanted = 0, iter(ks)
    target = next(wanted)
    while target is not None:
        c = min(chunk, target - drawn)
        z = torch.randn(c, latent_dim, device=device)
        params = model.decoder_params(z)
        # Every draw against every example: [c * B] pairs, each decoded draw repeated per example.
        pairs_x = x.unsqueeze(0).expand(c, *x.shape).flatten(0, 1)
        pairs_params = params.repeat_interleave(batch, dim=0)
        log_px_z = model.log_likelihood(pairs_x, pairs_params).view(c, batch).double()
        running = torch.logaddexp(running, torch.logsumexp(log_px_z, dim=0))
        drawn += c
        if drawn == target:
            estimates[target] = running - math.log(target)
            target = next(wanted, None)
    return estimates
