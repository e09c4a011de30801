"""Deterministic autoencoders: x -> z = f(x) -> x_hat = g(z), trained on a reconstruction loss.

With linear f and g and the MSE loss, the optimum spans the same subspace as PCA with latent_dim
components (Baldi & Hornik 1989): the `ae_linear` model, tested against PCA.
"""

from __future__ import annotations

import contextlib
import math

import torch

from gentool.losses.likelihoods import ReconstructionLoss
from gentool.methods.base import Method
from gentool.options import PositiveInt


class Autoencoder(Method):
    accepts_losses = (ReconstructionLoss,)
    accepted_losses_hint = "a reconstruction loss"   # check_loss_fits lists the fitting ones

    def __init__(self, encoder, decoder, loss: ReconstructionLoss, data_shape, value_range,
                 latent_dim: PositiveInt = 32, name: str = "ae"):
        super().__init__()
        loss.check_data_range(value_range)
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.value_range = tuple(value_range)
        self.loss = loss
        self.encoder = encoder(data_shape=self.data_shape, out_features=latent_dim)
        self.decoder = decoder(latent_dim=latent_dim, data_shape=self.data_shape,
                               params_per_pixel=loss.params_per_pixel)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.loss.mean(self.decoder(z))

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def _loss(self, x, autocast=contextlib.nullcontext):
        """Mean per-example loss, and the decoder's output parameters."""
        with autocast():
            params = self.decoder(self.encoder(x))
        return self.loss.loss(params, x).mean(), params

    def train_step(self, batch, ctx):
        x, _ = batch
        loss, params = self._loss(x, ctx.autocast)
        metrics = {"loss": loss.detach()}
        if ctx.diagnostics:
            metrics["mse"] = self.loss.mean_squared_error(params, x)
        return {**metrics, **ctx.optimizer_step(loss, "model")}

    @torch.no_grad()
    def eval_step(self, batch):
        x, _ = batch
        loss, params = self._loss(x)
        return {"loss": loss, "mse": self.loss.mean_squared_error(params, x)}

    @property
    def dims(self) -> int:
        return math.prod(self.data_shape)
