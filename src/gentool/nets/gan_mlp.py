"""Fully connected GAN generator and discriminator, for the 2-D toy sets (shape [2]) and small
images (any shape, flattened)."""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from gentool.nets.layers import (LabelConcat, Maxout, MinibatchDiscrimination, MinibatchStdDev,
                                 OutputRange, ProjectionHead, apply_spectral_norm)
from gentool.nets.mlp import mlp
from gentool.options import PositiveInt, UnitFloat


class MLPGenerator(nn.Module):
    """z [B, latent] (+ label embedding) -> hidden layers -> [B, *data_shape], squashed into
    value_range (None: raw, for points)."""

    # The data this network takes (checked where methods are built): it flattens its input, so
    # images and points ([D]) alike.
    DATA_KINDS = ("images", "points")

    def __init__(self, latent_dim: int, data_shape: Sequence[int],
                 hidden: Sequence[PositiveInt] = (256, 256),
                 activation: str = "relu", value_range: tuple[float, float] | None = None,
                 num_classes: int | None = None, embed_dim: PositiveInt = 16,
                 batch_norm: bool = False):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.condition = LabelConcat(latent_dim, num_classes, embed_dim)
        self.net = mlp([self.condition.out_features, *hidden, math.prod(self.data_shape)],
                       activation, batch_norm=batch_norm)
        self.squash = OutputRange(value_range)

    def forward(self, z, labels=None):
        x = self.net(self.condition(z, labels))
        return self.squash(x.view(z.shape[0], *self.data_shape))


class MLPDiscriminator(nn.Module):
    """x [B, *data_shape] -> flatten -> hidden layers -> [minibatch std] -> [minibatch
    discrimination] = h -> head(h) [+ <embed(y), h>]: [B] raw scores (logits).

    Hidden layers are Linear + activation, or maxout units with `maxout_pieces` > 1 (then
    `activation` and `dropout` are unused).
    """

    # The data this network takes (checked where methods are built): it flattens its input, so
    # images and points ([D]) alike.
    DATA_KINDS = ("images", "points")

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[PositiveInt] = (256, 256),
                 activation: str = "leaky_relu", spectral_norm: bool = False,
                 minibatch_discrimination: dict | None = None, minibatch_std: bool = False,
                 num_classes: int | None = None, dropout: UnitFloat = 0.0,
                 maxout_pieces: PositiveInt = 1):
        super().__init__()
        sizes = [math.prod(data_shape), *hidden]
        if maxout_pieces > 1:   # maxout units replace Linear + activation
            self.body = nn.Sequential(*(Maxout(n_in, n_out, maxout_pieces)
                                        for n_in, n_out in zip(sizes[:-1], sizes[1:])))
        else:
            # activate_last: h must be the activated features, not a linear map the head repeats
            self.body = mlp(sizes, activation, dropout=dropout, activate_last=True)
        n = sizes[-1]
        self.minibatch_std = MinibatchStdDev() if minibatch_std else None
        n += 1 if minibatch_std else 0
        self.minibatch_disc = None
        if minibatch_discrimination is not None:
            self.minibatch_disc = MinibatchDiscrimination(n, **minibatch_discrimination)
            n = self.minibatch_disc.out_features
        self.head = ProjectionHead(n, num_classes)
        if spectral_norm:
            apply_spectral_norm(self)

    def features(self, x):
        """h: what the head (and the projection) sees, [B, head in_features]."""
        h = self.body(x.flatten(1))
        if self.minibatch_std is not None:
            h = self.minibatch_std(h)
        if self.minibatch_disc is not None:
            h = self.minibatch_disc(h)
        return h

    def forward(self, x, labels=None):
        return self.head(self.features(x), labels)
