"""Decoder distributions p(x|z) and plain reconstruction losses.

A decoder emits `params_per_pixel` numbers per pixel and channel; these objects turn them into a
per-example loss (summed over all dimensions, in nats for likelihoods) and into the image the
decoder "means". Each is an nn.Module so a learned variance is a parameter the method trains.

`ReconstructionLoss` is anything an autoencoder can minimise; `Likelihood` is the subset that is
a normalised density, which is what a VAE's ELBO needs. MSE is deliberately not a likelihood:
use `gaussian` (its fixed-variance form is MSE up to scale and a constant) to get a true bound.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gentool.errors import GentoolError
from gentool.options import not_one_of

LOG_2PI = math.log(2 * math.pi)


def _sum_per_example(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(dim=1)


class ReconstructionLoss(nn.Module):
    name = "reconstruction"
    params_per_pixel = 1
    # What the loss models, by the data set's `values` (images count as "unit"): checked where
    # methods are built (gentool.methods.check_loss_fits), which names the losses that fit, and
    # `values_hint`, what the loss itself is for, after them.
    models_values: tuple[str, ...] = ("unit", "binary", "real", "counts")
    values_hint = ""

    def loss(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-example loss [B], summed over pixels and channels."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """The image the decoder output stands for, in data units."""
        raise NotImplementedError

    def check_data_range(self, value_range) -> None:
        """Refuse data this loss cannot model (override where the support is limited)."""

    @torch.no_grad()
    def mean_squared_error(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel squared error of the decoded mean: comparable across losses and models."""
        return ((self.mean(params.detach()).float() - x) ** 2).mean()


class Likelihood(ReconstructionLoss):
    """A normalised density: loss = -log p(x | params) in nats."""

    def bits_per_dim(self, nats_per_example: torch.Tensor, dims: int) -> torch.Tensor:
        return nats_per_example / (dims * math.log(2))


class MSE(ReconstructionLoss):
    """Squared error sum_i (x_i - y_i)^2 per example: the plain autoencoder loss (not a density)."""

    name = "mse"

    def loss(self, params, x):
        return _sum_per_example((params.float() - x) ** 2)

    def mean(self, params):
        return params


class Bernoulli(Likelihood):
    """-log Bern(x; sigmoid(l)) = BCE-with-logits, summed over pixels.

    Exact for binary data (`dataset.binarize=dynamic|static`); on grey values in [0,1] it is the
    common cross-entropy loss but not a normalised density, so the nats it reports are a loss, not
    a likelihood bound.
    """

    name = "bernoulli"
    models_values = ("unit", "binary")

    def loss(self, params, x):
        return _sum_per_example(F.binary_cross_entropy_with_logits(params.float(), x,
                                                                   reduction="none"))

    def mean(self, params):
        return torch.sigmoid(params)

    def check_data_range(self, value_range):
        lo, hi = value_range
        if lo < 0 or hi > 1:
            raise GentoolError(f"loss=bernoulli models pixels in [0, 1] but the data set is scaled "
                               f"to [{lo}, {hi}]; set dataset.range=[0,1] or use loss=gaussian.")


class Gaussian(Likelihood):
    """-log N(x; mu, sigma^2) = 0.5 * ((x-mu)/sigma)^2 + log sigma + 0.5 log 2 pi, per dimension.

    variance: `fixed` (sigma as given), `shared` (one learned log-sigma for all pixels) or
    `per_pixel` (the decoder emits a log-sigma per pixel next to the mean).
    """

    name = "gaussian"
    VARIANCES = ("fixed", "shared", "per_pixel")
    # Bits per dimension that turn this density of the data, as scaled, into one of 8-bit pixels
    # (gentool.methods.eight_bit_offset, set from the data set where the method is built); 0 keeps
    # the data's own continuous density, as for real-valued vectors.
    eight_bit_offset = 0.0

    def __init__(self, variance: str = "fixed", sigma: float = 1.0, min_log_sigma: float = -7.0):
        super().__init__()
        if variance not in self.VARIANCES:
            raise not_one_of("loss.variance", variance, self.VARIANCES,
                             "e.g. loss.variance=fixed.")
        if sigma <= 0:
            raise GentoolError(f"loss.sigma must be positive, got {sigma}.")
        self.variance = variance
        self.params_per_pixel = 2 if variance == "per_pixel" else 1
        # Clamping log-sigma from below keeps a learned variance from collapsing onto a pixel that
        # is constant in the data set (the density would grow without bound).
        self.min_log_sigma = min_log_sigma
        log_sigma = torch.tensor(math.log(sigma))
        if variance == "shared":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def _split(self, params):
        params = params.float()
        if self.variance == "per_pixel":
            mu, log_sigma = params.chunk(2, dim=1)
        else:
            mu, log_sigma = params, self.log_sigma
        return mu, log_sigma.clamp(min=self.min_log_sigma)

    def loss(self, params, x):
        mu, log_sigma = self._split(params)
        nll = 0.5 * ((x - mu) * torch.exp(-log_sigma)) ** 2 + log_sigma + 0.5 * LOG_2PI
        return _sum_per_example(nll.expand_as(x))

    def mean(self, params):
        return self._split(params)[0]

    def bits_per_dim(self, nats_per_example, dims):
        return nats_per_example / (dims * math.log(2)) + self.eight_bit_offset


class Multinomial(Likelihood):
    """A document's words as n independent draws from the decoder's softmax p over the vocabulary
    (n the document's length), in nats per document:

        log p(x) = log n! - sum_i log x_i! + sum_i x_i log p_i

    `coefficient: true` includes the multinomial coefficient log n! - sum_i log x_i! (constant in
    the model, so gradients are the same), making the loss the exact -log p(counts) and a VAE's
    ELBO a bound on it; `false` leaves the word-probability reconstruction -sum_i x_i log p_i.
    The data must be counts [B, V] (dataset.values=counts, e.g. dataset=text_folder).
    """

    name = "multinomial"
    models_values = ("counts",)
    values_hint = "keep it for word counts (dataset=text_folder, or dataset.values=counts)"

    def __init__(self, coefficient: bool = True):
        super().__init__()
        self.coefficient = coefficient

    def loss(self, params, x):
        logits = params.float().flatten(1)
        x = x.flatten(1)
        nll = -(x * torch.log_softmax(logits, dim=1)).sum(dim=1)
        if self.coefficient:
            nll = nll - torch.lgamma(x.sum(dim=1) + 1) + torch.lgamma(x + 1).sum(dim=1)
        return nll

    def mean(self, params):
        """The word probabilities p (a document's expected counts are n p)."""
        return torch.softmax(params.float().flatten(1), dim=1).view_as(params)

    @torch.no_grad()
    def mean_squared_error(self, params, x):
        """Squared error of the word probabilities against the document's word proportions."""
        proportions = x / x.flatten(1).sum(dim=1).clamp(min=1).view(-1, *[1] * (x.dim() - 1))
        return ((self.mean(params.detach()) - proportions) ** 2).mean()

    def bits_per_dim(self, nats_per_example, dims):
        return nats_per_example / (dims * math.log(2))
