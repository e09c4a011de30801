"""pix2pix (Isola et al. 2017): a conditional GAN that learns a mapping from example pairs.

Each batch is a PairBatch (data/batching.py): x = its inputs [B, C_in, H, W], y = its targets
[B, C_out, H, W]; `data_shape` is the pair's [C_in + C_out, H, W]. The discriminator judges (x, image) pairs patch by patch; the
generator is a U-Net whose only noise is dropout. With D's logits r = D(x, y), f = D(x, G(x)):

    L_D = the adversarial loss's discriminator objective on (r, f)
    L_G = the adversarial loss's generator objective on f  +  lambda * mean |G(x) - y|

(lambda = 100 in the paper; with `loss=nonsaturating` and `loss=minimax` gentool's objectives
carry the 0.5 factor of a balanced batch, and the L1 term is the mean over pixels.)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from gentool.errors import GentoolError
from gentool.losses.adversarial import AdversarialLoss
from gentool.methods.base import TwoPlayerMethod
from gentool.methods.gan import ADVERSARIAL_HINT
from gentool.options import NonNegativeFloat


class Pix2Pix(TwoPlayerMethod):
    accepts_losses = (AdversarialLoss,)
    accepted_losses_hint = ADVERSARIAL_HINT
    progress_keys = ("d_loss", "g_loss")

    def __init__(self, generator, discriminator, loss: AdversarialLoss, data_shape, value_range,
                 input_channels: int | None, l1_weight: NonNegativeFloat = 100.0,
                 generator_optimizer: dict | None = None,
                 discriminator_optimizer: dict | None = None, name: str = "pix2pix"):
        super().__init__()
        channels, height, width = (int(v) for v in data_shape)
        if input_channels is None or not 0 < int(input_channels) < channels:
            raise GentoolError(f"model={name} needs image pairs (dataset=derived_pairs or "
                               f"dataset=paired_folder); dataset.input_channels is "
                               f"{input_channels} for images of {channels} channels.")
        self.loss, self.l1_weight = loss, l1_weight
        self.input_channels = int(input_channels)
        self.output_channels = channels - self.input_channels
        self.value_range = tuple(value_range)
        target_shape = (self.output_channels, height, width)
        self.generator = generator(in_channels=self.input_channels, data_shape=target_shape,
                                   value_range=self.value_range)
        self.discriminator = discriminator(in_channels=self.input_channels,
                                           data_shape=target_shape)
        self.set_player_optimizers(generator_optimizer, discriminator_optimizer)

    # -- capabilities ------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, inputs: torch.Tensor) -> torch.Tensor:
        """The generator's output for inputs [B, C_in, H, W], with its dropout on (pix2pix's
        noise at test time too) and batch norm in eval mode."""
        with _dropout_active(self.generator):
            return self.generator(inputs).float()

    # -- objective ---------------------------------------------------------------------------
    def discriminator_loss(self, inputs, targets, outputs, autocast=contextlib.nullcontext):
        with autocast():
            real = self.discriminator(inputs, targets).float().flatten()
            fake = self.discriminator(inputs, outputs.detach()).float().flatten()
        return self.loss.discriminator_loss(real, fake), real, fake

    def generator_loss(self, inputs, targets, outputs, autocast=contextlib.nullcontext):
        with autocast():
            fake = self.discriminator(inputs, outputs).float().flatten()
        adversarial = self.loss.generator_loss(fake)
        l1 = (outputs.float() - targets).abs().mean()
        return adversarial + self.l1_weight * l1, adversarial, l1

    def train_step(self, batch, ctx):
        inputs, targets = batch.inputs, batch.targets
        with ctx.autocast():
            outputs = self.generator(inputs).float()
        d_loss, real, fake = self.discriminator_loss(inputs, targets, outputs, ctx.autocast)
        metrics = ctx.optimizer_step(d_loss, "discriminator")
        # The generator step must not leave gradients in D.
        self.discriminator.requires_grad_(False)
        g_loss, adversarial, l1 = self.generator_loss(inputs, targets, outputs, ctx.autocast)
        metrics.update(ctx.optimizer_step(g_loss, "generator"))
        self.discriminator.requires_grad_(True)
        return {**metrics, "d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "g_adversarial": adversarial.detach(), "l1": l1.detach(),
                "d_real": torch.sigmoid(real.detach()).mean(),
                "d_fake": torch.sigmoid(fake.detach()).mean()}

    @torch.no_grad()
    def eval_step(self, batch):
        inputs, targets = batch.inputs, batch.targets
        outputs = self.translate(inputs)
        d_loss, _, _ = self.discriminator_loss(inputs, targets, outputs)
        g_loss, adversarial, l1 = self.generator_loss(inputs, targets, outputs)
        return {"d_loss": d_loss, "g_loss": g_loss, "l1": l1}


@contextlib.contextmanager
def _dropout_active(module: nn.Module):
    dropouts = [m for m in module.modules() if isinstance(m, nn.Dropout)]
    modes = [m.training for m in dropouts]
    for m in dropouts:
        m.train()
    try:
        yield
    finally:
        for m, mode in zip(dropouts, modes):
            m.train(mode)
