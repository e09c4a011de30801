"""What a trained method can do, as types (DESIGN.md section 3a).

Each capability is a runtime-checkable Protocol; TensorBoard logging, `sample`, `eval` and
`finetune` choose what to do with `isinstance(method, Capability)`, so a method gains a feature
by having the methods below, and a renamed method fails the check everywhere at once rather than
silently switching one feature off. Images going in and out are in data units (the data set's
`range`); codes are float [N, latent_dim].

isinstance on a Protocol checks that the names exist, not their signatures or values:
`conditional_classes` reads the class count itself, because an unconditional GAN has the
attribute set to None.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Encodes(Protocol):
    """x [N, ...] -> codes [N, latent_dim] (a VAE's posterior mean)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Decodes(Protocol):
    """codes [N, latent_dim] -> data [N, ...] (a VAE's likelihood mean)."""

    latent_dim: int

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Reconstructs(Protocol):
    """x -> its reconstruction, the same shape."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Samples(Protocol):
    """n draws of the model; `temperature` scales the prior's noise."""

    def sample(self, n: int, labels=None, temperature: float = 1.0) -> torch.Tensor: ...


@runtime_checkable
class SamplesConditionally(Samples, Protocol):
    """Draws of given classes: `sample(n, labels=...)` with labels in 0..num_classes-1."""

    num_classes: int | None


@runtime_checkable
class Discriminates(Protocol):
    """The discriminator's score of each example [N] (higher: judged real), and the share of
    draws that sampling with rejection drops by that score (gentool.rejection; 0: none)."""

    rejection_rate: float

    def discriminate(self, x: torch.Tensor, labels=None) -> torch.Tensor: ...


@runtime_checkable
class Translates(Protocol):
    """Image-to-image: inputs [N, input_channels, H, W] -> outputs (the targets' side)."""

    input_channels: int

    def translate(self, inputs: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class ScoresLikelihood(Protocol):
    """A latent-variable model with prior N(0, I), a diagonal Gaussian q(z|x) and a tractable
    p(x|z): what the ELBO, IWAE and naive Monte-Carlo estimates of log p(x) need
    (gentool.metrics.likelihood), and the unit they are reported in."""

    latent_dim: int

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each [N, latent_dim]."""

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's raw output for codes z: what log_likelihood scores."""

    def log_likelihood(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per example [N], in nats, from decoder_params(z)."""

    def bits_per_dim(self, nats: float) -> float:
        """A negative log-likelihood per example in nats, as bits per data dimension (with the
        likelihood's discretisation correction where it has one)."""


def conditional_classes(method) -> int | None:
    """How many classes `method` samples conditionally on, or None when it does not."""
    if not isinstance(method, SamplesConditionally):
        return None
    return int(method.num_classes) if method.num_classes else None
