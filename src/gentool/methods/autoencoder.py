"""Deterministic autoencoders: x -> z = f(x) -> x_hat = g(z), trained on a reconstruction loss.

With linear f and g and the MSE loss, the optimum spans the same subspace as PCA with latent_dim
components (Baldi & Hornik 1989): the `ae_linear` model, tested against PCA.
"""

from __future__ import annotations

import math

import torch

from gentool.losses.likelihoods import ReconstructionLoss
from gentool.methods.base import Method, check_reconstruction_loss
from gentool.options import PositiveInt


class Autoencoder(Method):
    def __init__(self, encoder, decoder, loss: ReconstructionLoss, data_shape, value_range,
                 latent_dim: PositiveInt = 32, name: str = "ae"):
        super().__init__()
        check_reconstruction_loss(loss, ReconstructionLoss, name, value_range)
        self.latent_dim = latent_dim
        self.data_shape = tuple(data_shape)
        self.value_range = tuple(value_range)
        self.reconstruction = loss
        self.encoder = encoder(in_shape=self.data_shape, out_features=latent_dim)
        self.decoder = decoder(latent_dim=latent_dim, out_shape=self.data_shape,
                               params_per_pixel=loss.params_per_pixel)

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.reconstruction.mean(self.decoder(z))

    def reconstruct(self, x):
        return self.decode(self.encode(x))

    def _loss(self, x):
        """Mean per-example loss, and the decoder's output parameters."""
        with self.autocast():
            params = self.decoder(self.encoder(x))
        return self.reconstruction.loss(params, x).mean(), params

    def train_step(self, batch, step):
        x, _ = batch
        loss, params = self._loss(x)
        metrics = {"loss": loss.detach()}
        if self.diagnostics:
            metrics["mse"] = self.reconstruction.mean_squared_error(params, x)
        return {**metrics, **self.optimizer_step(loss, "model")}

    @torch.no_grad()
    def eval_step(self, batch):
        x, _ = batch
        loss, params = self._loss(x)
        return {"loss": loss, "mse": self.reconstruction.mean_squared_error(params, x)}

    @property
    def dims(self) -> int:
        return math.prod(self.data_shape)
