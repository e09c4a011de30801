"""Fully connected encoders and decoders for images of any shape and for vectors [D]."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from gentool.options import PositiveInt

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh,
               "elu": nn.ELU, "silu": nn.SiLU, "identity": nn.Identity}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class GatedLinear(nn.Module):
    """A gated linear unit (Dauphin et al. 2017), the dense layer of the VampPrior and
    Exemplar-VAE MLPs:  h = (W x + b) * sigmoid(V x + c)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.gate = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * torch.sigmoid(self.gate(x))


def mlp(sizes: Sequence[int], activation: str = "relu", batch_norm: bool = False,
        dropout: float = 0.0, activate_last: bool = False, gated: bool = False) -> nn.Sequential:
    """Linear layers between consecutive sizes, the activation between them (not after the last).

    Each hidden Linear is followed by [BatchNorm1d] -> activation -> [Dropout]. `activate_last`
    treats the last Linear as hidden too, for feature extractors whose output feeds a head.
    `gated` makes every hidden Linear a GatedLinear (the output layer stays linear); the gate is
    the non-linearity, so such nets usually take activation=identity.
    """
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        hidden = activate_last or i < len(sizes) - 2
        dense = GatedLinear if gated and hidden else nn.Linear
        layers.append(dense(n_in, n_out, bias=not (hidden and batch_norm)))  # BN has its own
        if hidden:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


# What an encoder sees of non-negative counts (documents): `raw` as they are; `log1p` log(1 + x);
# `proportions` x / sum(x), a document's word frequencies (the lecture's "word probabilities"),
# so long and short documents on one topic look alike.
ENCODER_INPUTS = {"raw": lambda x: x, "log1p": torch.log1p,
                  "proportions": lambda x: x / x.sum(dim=1, keepdim=True).clamp(min=1e-8)}


class MLPEncoder(nn.Module):
    """Image [B, C, H, W] or vector [B, D] -> flatten -> `inputs` -> hidden layers ->
    out_features."""

    # The data this network takes (checked where methods are built): it flattens its input, so
    # images and points ([D]) alike.
    DATA_KINDS = ("images", "points")

    def __init__(self, data_shape: Sequence[int], out_features: int,
                 hidden: Sequence[PositiveInt] = (400,), activation: str = "relu",
                 gated: bool = False, inputs: str = "raw"):
        super().__init__()
        if inputs not in ENCODER_INPUTS:
            raise ValueError(f"unknown encoder inputs {inputs!r}; choose one of "
                             f"{sorted(ENCODER_INPUTS)}")
        self.inputs = inputs
        self.net = mlp([math.prod(data_shape), *hidden, out_features], activation, gated=gated)

    def forward(self, x):
        return self.net(ENCODER_INPUTS[self.inputs](x.flatten(1)))


class MLPDecoder(nn.Module):
    """Code [B, latent] -> hidden layers -> `params_per_pixel` maps of the image shape
    ([B, C * params, H, W]), or `params_per_pixel` vectors of a vector shape ([B, params * D]).

    The output is raw (logits, means): the likelihood decides what the numbers mean.
    """

    # The data this network takes (checked where methods are built): images and vectors [D].
    DATA_KINDS = ("images", "points")

    def __init__(self, latent_dim: int, data_shape: Sequence[int],
                 hidden: Sequence[PositiveInt] = (400,), activation: str = "relu",
                 params_per_pixel: int = 1, gated: bool = False):
        super().__init__()
        self.params_shape = (data_shape[0] * params_per_pixel, *data_shape[1:])
        self.net = mlp([latent_dim, *hidden, math.prod(self.params_shape)], activation,
                       gated=gated)

    def forward(self, z):
        return self.net(z).view(z.shape[0], *self.params_shape)
