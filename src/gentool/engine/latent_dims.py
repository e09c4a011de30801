"""Which two latent dimensions a traversal should vary when the user does not say (`dims=auto`).

A trained VAE leaves most of its latent dimensions inactive: their posterior collapses onto the
prior, the decoder ignores them, and a traversal over two of them shows one image many times.
The active dimensions are the ones whose posterior moves away from the prior, i.e. those with
the largest average KL(q(z_i|x) || N(0, 1)) on test data. A model without a posterior (an
autoencoder) has no KL; there the dimensions whose codes vary most over test data stand in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gentool.capabilities import Encodes, ScoresLikelihood


@dataclass(frozen=True)
class Chosen:
    dims: tuple[int, int]
    scores: tuple[float, float]   # the KL (nats) or code variance of each chosen dimension
    measure: str                  # what `scores` are, in words

    def sentence(self) -> str:
        i, j = self.dims
        if not self.measure:
            return f"Traversing latent dimensions {i} and {j}"
        a, b = self.scores
        return f"Traversing latent dimensions {i} and {j} ({self.measure}: {a:.3g}, {b:.3g})"


@torch.no_grad()
def kl_per_dim(method, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The average KL(q(z_i|x) || N(0, 1)) of each latent dimension over x, in nats [latent_dim]."""
    total = None
    for start in range(0, len(x), batch_size):
        mu, logvar = method.posterior(x[start:start + batch_size])
        mu, logvar = mu.float(), logvar.float()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(0)
        total = kl if total is None else total + kl
    return total.cpu() / len(x)


@torch.no_grad()
def code_variance(method, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    codes = torch.cat([method.encode(x[start:start + batch_size]).float()
                       for start in range(0, len(x), batch_size)])
    return codes.var(0).cpu() if len(codes) > 1 else torch.zeros(codes.shape[1])


def choose_dims(method, x: torch.Tensor | None) -> Chosen:
    """The two most active latent dimensions of `method` on examples x (test data)."""
    if x is not None and len(x) and isinstance(method, ScoresLikelihood):
        scores, measure = kl_per_dim(method, x), "largest mean KL, nats"
    elif x is not None and len(x) and isinstance(method, Encodes):
        scores, measure = code_variance(method, x), "largest variance of the test codes"
    else:   # nothing to measure activity with: the first two
        return Chosen((0, 1), (float("nan"), float("nan")), "")
    top = torch.topk(scores, 2).indices.tolist()
    return Chosen((top[0], top[1]), (float(scores[top[0]]), float(scores[top[1]])), measure)
