"""Convolutional encoders and decoders sized from the image shape.

The encoder halves the resolution with stride-2 4x4 convolutions while both sides are even and
at least 8 (so 8x8 -> 4x4, 28x28 -> 7x7, 32x32 and 64x64 -> 4x4, 28x20 -> 7x5), then a linear
layer maps the feature map to the code. The decoder mirrors it exactly with transposed
convolutions, which double the size, so every shape the encoder accepts comes back unchanged.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn

from gentool.options import NonNegativeInt, PositiveInt

from gentool.nets.mlp import make_activation


def downsampling_plan(height: int, width: int, max_levels: int = 4) -> list[tuple[int, int]]:
    """The spatial sizes after each stride-2 level, e.g. (28, 28) -> [(14, 14), (7, 7)]."""
    sizes = []
    while len(sizes) < max_levels and height % 2 == 0 and width % 2 == 0 and min(height, width) >= 8:
        height, width = height // 2, width // 2
        sizes.append((height, width))
    return sizes


def _channels(level: int, base: int, max_channels: int) -> int:
    return min(base * 2 ** level, max_channels)


class ConvEncoder(nn.Module):
    # The data this network takes (checked where methods are built): [C, H, W] images only.
    DATA_KINDS = ("images",)

    def __init__(self, data_shape: Sequence[int], out_features: int, channels: PositiveInt = 32,
                 max_channels: PositiveInt = 256, max_levels: NonNegativeInt = 4,
                 activation: str = "leaky_relu", batch_norm: bool = False):
        super().__init__()
        c, h, w = data_shape
        plan = downsampling_plan(h, w, max_levels)
        layers: list[nn.Module] = []
        n_in = c
        for level in range(len(plan)):
            n_out = _channels(level, channels, max_channels)
            layers.append(nn.Conv2d(n_in, n_out, 4, stride=2, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(n_out))
            layers.append(make_activation(activation))
            n_in = n_out
        fh, fw = plan[-1] if plan else (h, w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(n_in * fh * fw, out_features)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class ConvDecoder(nn.Module):
    # The data this network takes (checked where methods are built): [C, H, W] images only.
    DATA_KINDS = ("images",)

    def __init__(self, latent_dim: int, data_shape: Sequence[int], channels: PositiveInt = 32,
                 max_channels: PositiveInt = 256, max_levels: NonNegativeInt = 4,
                 activation: str = "relu", batch_norm: bool = False, params_per_pixel: int = 1):
        super().__init__()
        c, h, w = data_shape
        plan = downsampling_plan(h, w, max_levels)
        levels = len(plan)
        self.start_channels = _channels(levels - 1, channels, max_channels) if levels else channels
        self.start_size = plan[-1] if plan else (h, w)
        self.head = nn.Linear(latent_dim, self.start_channels * math.prod(self.start_size))
        layers: list[nn.Module] = [make_activation(activation)]
        n_in = self.start_channels
        for level in reversed(range(levels)):
            last = level == 0
            n_out = c * params_per_pixel if last else _channels(level - 1, channels, max_channels)
            layers.append(nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1,
                                             bias=last or not batch_norm))
            if not last:
                if batch_norm:
                    layers.append(nn.BatchNorm2d(n_out))
                layers.append(make_activation(activation))
            n_in = n_out
        if not levels:  # nothing to upsample (e.g. odd 5x5 images): one 3x3 conv to the output
            layers.append(nn.Conv2d(n_in, c * params_per_pixel, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        h = self.head(z).view(z.shape[0], self.start_channels, *self.start_size)
        return self.body(h)
