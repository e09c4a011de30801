"""DCGAN generator and discriminator (Radford et al. 2016), sized from the image shape.

The discriminator halves the resolution with stride-2 4x4 convolutions following
`downsampling_plan` (64x64 -> 4x4, 32x32 -> 4x4, 28x28 -> 7x7, 8x8 -> 4x4); the generator mirrors
it with transposed convolutions, so every shape the conv encoder accepts is produced exactly.
Channels double per level down (halve per level up), from `channels` to at most `max_channels`:
64x64 gives 512 @ 4x4 -> 256 @ 8x8 -> 128 @ 16x16 -> 64 @ 32x32 -> image, the paper's layout.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn
from torch.nn.utils import parametrize

from gentool.nets.conv import _channels, downsampling_plan
from gentool.nets.layers import (LabelConcat, MinibatchDiscrimination, MinibatchStdDev,
                                 OutputRange, ProjectionHead, apply_spectral_norm)
from gentool.options import PositiveInt


def dcgan_init(module: nn.Module) -> nn.Module:
    """DCGAN's initialisation: conv and linear weights ~ N(0, 0.02), batch-norm weights
    ~ N(1, 0.02), all their biases 0. Embeddings keep their own. Returns the module.

    Spectrally normalised layers get their underlying (un-normalised) weight initialised.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd)):
            nn.init.normal_(_raw_weight(m), 0.0, 0.02)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
        else:
            continue
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    return module


def _raw_weight(m: nn.Module):
    if parametrize.is_parametrized(m, "weight"):
        return m.parametrizations.weight.original
    return m.weight


class DCGANGenerator(nn.Module):
    """z [B, latent] (+ label embedding) -> Linear -> (C0, h0, w0), BN, ReLU -> per level
    ConvTranspose2d(4, stride 2, pad 1), BN, ReLU (the last level: to the image channels, no BN)
    -> output squashing. [B, *data_shape]."""

    # The data this network takes (checked where methods are built): [C, H, W] images only.
    DATA_KINDS = ("images",)

    def __init__(self, latent_dim: int, data_shape: Sequence[int], channels: PositiveInt = 64,
                 max_channels: PositiveInt = 512,
                 value_range: tuple[float, float] | None = (-1.0, 1.0),
                 num_classes: int | None = None, embed_dim: PositiveInt = 32):
        super().__init__()
        c, h, w = data_shape
        plan = downsampling_plan(h, w)
        levels = len(plan)
        self.start_channels = _channels(levels - 1, channels, max_channels) if levels else channels
        self.start_size = plan[-1] if plan else (h, w)
        self.condition = LabelConcat(latent_dim, num_classes, embed_dim)
        self.project = nn.Linear(self.condition.out_features,
                                 self.start_channels * math.prod(self.start_size), bias=False)
        layers: list[nn.Module] = [nn.BatchNorm2d(self.start_channels), nn.ReLU()]
        n_in = self.start_channels
        for level in reversed(range(levels)):
            last = level == 0
            n_out = c if last else _channels(level - 1, channels, max_channels)
            layers.append(nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(n_out), nn.ReLU()]
            n_in = n_out
        if not levels:  # nothing to upsample (odd sides, e.g. 5x5): one 3x3 conv to the image
            layers.append(nn.Conv2d(n_in, c, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.squash = OutputRange(value_range)
        dcgan_init(self)

    def forward(self, z, labels=None):
        x = self.project(self.condition(z, labels))
        x = self.body(x.view(z.shape[0], self.start_channels, *self.start_size))
        return self.squash(x)


class DCGANDiscriminator(nn.Module):
    """x [B, C, H, W] -> per level Conv2d(4, stride 2, pad 1), [BN on all but the first level],
    LeakyReLU(0.2) -> [minibatch std channel] -> flatten -> [minibatch discrimination] = h
    -> head(h) [+ <embed(y), h>]: [B] raw logits.

    batch_norm is a switch because WGAN-GP critics must not use it: the gradient penalty is
    per example, and batch norm mixes the examples of a batch.
    """

    # The data this network takes (checked where methods are built): [C, H, W] images only.
    DATA_KINDS = ("images",)

    def __init__(self, data_shape: Sequence[int], channels: PositiveInt = 64,
                 max_channels: PositiveInt = 512, batch_norm: bool = True,
                 spectral_norm: bool = False, minibatch_std: bool = False,
                 minibatch_discrimination: dict | None = None, num_classes: int | None = None):
        super().__init__()
        c, h, w = data_shape
        plan = downsampling_plan(h, w)
        layers: list[nn.Module] = []
        n_in = c
        for level in range(len(plan)):
            n_out = _channels(level, channels, max_channels)
            norm = batch_norm and level > 0  # no BN on the first level, as in the paper
            layers.append(nn.Conv2d(n_in, n_out, 4, stride=2, padding=1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(n_out))
            layers.append(nn.LeakyReLU(0.2))
            n_in = n_out
        if not plan:  # nothing to downsample (odd sides): one 3x3 conv so the head sees features
            layers += [nn.Conv2d(n_in, channels, 3, padding=1), nn.LeakyReLU(0.2)]
            n_in = channels
        self.body = nn.Sequential(*layers)
        fh, fw = plan[-1] if plan else (h, w)
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        n = (n_in + (1 if minibatch_std else 0)) * fh * fw
        self.minibatch_disc = None
        if minibatch_discrimination is not None:
            self.minibatch_disc = MinibatchDiscrimination(n, **minibatch_discrimination)
            n = self.minibatch_disc.out_features
        self.head = ProjectionHead(n, num_classes)
        dcgan_init(self)
        if spectral_norm:  # after the init: the parametrisation starts from the initialised weight
            apply_spectral_norm(self)

    def features(self, x):
        """h: what the head (and the projection) sees, [B, head in_features]."""
        h = self.body(x)
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        h = h.flatten(1)
        if self.minibatch_disc is not None:
            h = self.minibatch_disc(h)
        return h

    def forward(self, x, labels=None):
        return self.head(self.features(x), labels)
