"""Regularisers of the discriminator: gradient penalties, instance noise and weight clipping.

`critic` below is any callable x -> scores [B] (a conditional model's caller closes over the
labels). The penalties return the UNWEIGHTED value; the method multiplies by its lambda / gamma.

The gradient penalties are per-example gradient norms taken through `critic(x).sum()`: that is the
per-example gradient only when each score depends on its own example alone, so critics regularised
this way must not use batch normalisation (Gulrajani et al. 2017 use layer norm or none).
"""

from __future__ import annotations

import torch
from torch import nn



def _input_gradient(critic, x: torch.Tensor) -> torch.Tensor:
    """d critic(x) / dx per example, flattened to [B, D] in float32, kept in the graph.

    create_graph=True makes the gradient itself differentiable, so a penalty on its norm trains
    the critic's parameters (a double backward); without it the penalty would be a constant.
    """
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    (grad,) = torch.autograd.grad(scores.float().sum(), x, create_graph=True)
    return grad.float().flatten(1)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor,
                     target: float = 1.0) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017):  E_xhat (||grad_x D(x_hat)||_2 - target)^2,

        x_hat = eps * real + (1 - eps) * fake,   eps ~ U[0, 1], one per example.

    One eps per example (shape [B, 1, ..., 1], from the global RNG on real's device) samples points
    uniformly along each real-fake segment, where the optimal critic has gradient norm 1; a single
    eps shared by the batch would put all points at the same fraction of every segment. real and
    fake are detached: the penalty trains the critic only, never the generator.
    """
    real, fake = real.detach(), fake.detach()
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device,
                     dtype=real.dtype)
    x_hat = eps * real + (1 - eps) * fake
    norms = torch.linalg.vector_norm(_input_gradient(critic, x_hat), dim=1)
    return ((norms - target) ** 2).mean()


def r1_penalty(critic, real: torch.Tensor) -> torch.Tensor:
    """R1 (Roth et al. 2017; Mescheder et al. 2018):  E_x ||grad_x D(x)||^2 on real data.

    Penalising the critic's slope on the data keeps it from growing ever steeper there, which is
    what makes the simple GAN game locally convergent. Unweighted: the caller multiplies by gamma/2.
    """
    return _input_gradient(critic, real).pow(2).sum(dim=1).mean()


def r2_penalty(critic, fake: torch.Tensor) -> torch.Tensor:
    """R2: the same squared gradient norm on generated data, E_z ||grad_x D(G(z))||^2.

    fake is detached first, so the penalty never sends a gradient into the generator.
    """
    return _input_gradient(critic, fake.detach()).pow(2).sum(dim=1).mean()


def instance_noise_sigma(step: int, sigma0: float, anneal_steps: int) -> float:
    """Instance noise std (Sønderby et al. 2016; Arjovsky & Bottou 2017) at a training step:

        sigma(step) = sigma0 * max(0, 1 - step / anneal_steps)
        sigma(step) = sigma0                                      if anneal_steps <= 0

    sigma0 >= 0 (checked by the GAN). Noise on both real and fake inputs makes the two distributions overlap, so the discriminator
    cannot separate them perfectly early on; annealing it to 0 recovers the true data at the end.
    """
    if anneal_steps <= 0:
        return float(sigma0)
    return float(sigma0) * max(0.0, 1.0 - step / anneal_steps)


def add_instance_noise(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x + sigma * N(0, I), sigma >= 0; x itself (no random draw) when sigma == 0."""
    if sigma == 0:
        return x
    return x + sigma * torch.randn_like(x)


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Original WGAN (Arjovsky et al. 2017): clamp every parameter to [-clip, clip] in place.

    A crude way to keep the critic K-Lipschitz for some K; `clip` > 0 (checked by the GAN).
    Buffers (batch-norm running statistics)
    are not parameters of the function being constrained and are left alone.
    """
    for p in module.parameters():
        p.clamp_(-clip, clip)
