"""The pix2pix networks (Isola et al. 2017), sized from the image: a U-Net generator and a
PatchGAN discriminator that judges (input, output) pairs patch by patch."""

from __future__ import annotations

import torch
from torch import nn

from gentool.nets.dcgan import dcgan_init
from gentool.nets.layers import OutputRange
from gentool.options import NonNegativeInt, PositiveInt, UnitFloat


def halvings(height: int, width: int, smallest: int, most: int) -> int:
    """How often both sides can be halved exactly while staying >= smallest (at most `most`)."""
    count = 0
    while count < most and height % 2 == 0 and width % 2 == 0 and \
            min(height, width) // 2 >= smallest:
        height, width, count = height // 2, width // 2, count + 1
    return count


class UNetGenerator(nn.Module):
    """Input image [B, in_channels, H, W] -> output image [B, *data_shape] (the target's
    [C_out, H, W]): stride-2 4x4 convolutions (BN and LeakyReLU) down to the smallest exact
    size -> transposed convolutions back up, each level concatenated with its mirror (the skip
    connections that carry the input's detail) -> tanh output.

    Dropout (p=`dropout`) in the `dropout_layers` innermost up-levels is pix2pix's only noise
    source; it stays on at test time (see `translate` in methods/pix2pix.py).
    """

    # The data this network takes (checked where methods are built): pairs of [C, H, W] images.
    DATA_KINDS = ("image pairs",)

    def __init__(self, in_channels: int, data_shape, channels: PositiveInt = 64,
                 max_channels: PositiveInt = 512, dropout: UnitFloat = 0.5,
                 dropout_layers: NonNegativeInt = 3, value_range=(-1.0, 1.0)):
        super().__init__()
        out_channels, height, width = (int(v) for v in data_shape)
        levels = halvings(height, width, smallest=2, most=8)
        if levels < 1:
            raise ValueError(f"the U-Net needs image sides divisible by 2, got {[height, width]}")
        widths = [min(channels * 2 ** i, max_channels) for i in range(levels)]
        self.down = nn.ModuleList()
        for i in range(levels):
            layers = [nn.Conv2d(in_channels if i == 0 else widths[i - 1], widths[i], 4, 2, 1,
                                bias=i in (0, levels - 1))]
            if 0 < i < levels - 1:
                layers.append(nn.BatchNorm2d(widths[i]))
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2)))
        self.up = nn.ModuleList()
        for i in reversed(range(levels)):
            n_in = widths[i] if i == levels - 1 else 2 * widths[i]
            if i == 0:
                self.up.append(nn.ConvTranspose2d(n_in, out_channels, 4, 2, 1))
                continue
            layers = [nn.ConvTranspose2d(n_in, widths[i - 1], 4, 2, 1, bias=False),
                      nn.BatchNorm2d(widths[i - 1])]
            if levels - 1 - i < dropout_layers and dropout > 0:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers, nn.ReLU()))
        self.squash = OutputRange(value_range)
        dcgan_init(self)

    def forward(self, x):
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        x = skips.pop()
        for up in self.up:
            x = up(x)
            if skips:
                x = torch.cat([x, skips.pop()], dim=1)
        return self.squash(x)


class PatchDiscriminator(nn.Module):
    """(input [B, in_channels, H, W], candidate output [B, *data_shape]) concatenated on
    channels -> stride-2 4x4 convolutions (up to 3, while the map stays >= 8 pixels), a stride-1 4x4 convolution, then 1 logit per patch:
    [B, 1, h', w'] - pix2pix's 70x70 PatchGAN at 256x256, scaled down for small images."""

    # The data this network takes (checked where methods are built): pairs of [C, H, W] images.
    DATA_KINDS = ("image pairs",)

    def __init__(self, in_channels: int, data_shape, channels: PositiveInt = 64,
                 max_channels: PositiveInt = 512):
        super().__init__()
        out_channels, height, width = (int(v) for v in data_shape)
        strided = max(1, halvings(height, width, smallest=4, most=3))
        layers: list[nn.Module] = []
        n_in = in_channels + out_channels
        for i in range(strided + 1):   # the last one keeps the resolution (stride 1)
            n_out = min(channels * 2 ** i, max_channels)
            layers.append(nn.Conv2d(n_in, n_out, 4, 2 if i < strided else 1, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(n_out))
            layers.append(nn.LeakyReLU(0.2))
            n_in = n_out
        layers.append(nn.Conv2d(n_in, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, inputs, outputs):
        return self.body(torch.cat([inputs, outputs], dim=1))
