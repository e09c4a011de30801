"""The generator's latent distribution: where a GAN's z comes from.

- `StandardNormal`: z ~ N(0, I), the usual prior.
- `GaussianMixture`: z ~ (1/K) sum_k N(mu_k, sigma^2 I), K equal-weight components whose means
  are drawn once from N(0, I) when the model is built and saved with its weights (a buffer).
  This is the mixture latent of DeLiGAN (Gurumurthy, Sarvadevabhatla and Babu, CVPR 2017) and
  of the static GM-GAN (Ben-Yosef and Weinshall, 2018), with the means fixed. A generator is a
  continuous map, so from N(0, I) it must spread some draws along bridges between separated
  modes of the data; from well-separated components (sigma much smaller than the distance
  between means, which in 16 or more dimensions is about sqrt(2 * latent_dim)) it can send each
  component to one mode and leave nothing in between.

`temperature` scales the noise around the centre: all of z for the standard normal, the spread
within each component for the mixture (the components themselves are kept).
"""

from __future__ import annotations

import torch
from torch import nn


class StandardNormal(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, n: int, device, temperature: float = 1.0) -> torch.Tensor:
        return temperature * torch.randn(n, self.latent_dim, device=device)


class GaussianMixture(nn.Module):
    def __init__(self, latent_dim: int, components: int, sigma: float):
        super().__init__()
        self.latent_dim, self.sigma = latent_dim, float(sigma)
        self.register_buffer("means", torch.randn(components, latent_dim))

    def forward(self, n: int, device, temperature: float = 1.0) -> torch.Tensor:
        component = torch.randint(self.means.shape[0], (n,), device=device)
        noise = torch.randn(n, self.latent_dim, device=device)
        return self.means.to(device)[component] + (temperature * self.sigma) * noise


def latent_prior(latent_dim: int, components: int = 0, sigma: float = 0.1) -> nn.Module:
    """N(0, I) when `components` is 0, else the mixture of that many components."""
    if components == 0:
        return StandardNormal(latent_dim)
    return GaussianMixture(latent_dim, components, sigma)
