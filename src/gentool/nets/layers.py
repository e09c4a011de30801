"""Layers shared by the GAN networks: batch statistics for the discriminator, spectral norm,
class conditioning and output squashing."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, "Improved Techniques for Training GANs", sec 3.2.

    M_i = f(x_i) T viewed as [num_kernels, kernel_dim];  c_b(x_i, x_j) = exp(-||M_i,b - M_j,b||_1);
    o(x_i)_b = sum_{j != i} c_b(x_i, x_j);  output cat([f(x_i), o(x_i)]).

    Self is excluded: the paper sums over all j, which only adds the constant c_b(x_i, x_i) = 1.
    A collapsed generator makes every o large, which the discriminator can see in one batch.
    """

    def __init__(self, in_features: int, num_kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.num_kernels, self.kernel_dim = num_kernels, kernel_dim
        self.out_features = in_features + num_kernels
        # std 1/sqrt(in_features) keeps M of order one for features of order one, so the L1
        # distances (sums of kernel_dim terms) neither vanish nor drive every c_b to zero.
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim)
                              / math.sqrt(in_features))

    def forward(self, f):
        m = (f @ self.T).view(f.shape[0], self.num_kernels, self.kernel_dim).transpose(0, 1)
        # cdist keeps no [num_kernels, N, N, kernel_dim] differences from forward to backward,
        # as a broadcast subtraction does: on a CPU thread, at N=256, it is about 3.5 times faster.
        l1 = torch.cdist(m, m, p=1)                                   # [num_kernels, N, N]
        # exp(-0) is exactly 1 on the diagonal, so subtracting 1 removes self exactly
        o = torch.exp(-l1).sum(2) - 1
        return torch.cat([f, o.t()], dim=1)

    def extra_repr(self):
        return f"in_features={self.T.shape[0]}, num_kernels={self.num_kernels}, " \
               f"kernel_dim={self.kernel_dim}"


class Maxout(nn.Module):
    """Goodfellow et al. 2013: `pieces` linear maps of the input, their elementwise maximum.

    [B, in_features] -> [B, out_features]; the discriminator unit of the GAN, VEEGAN and PacGAN
    toy experiments.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        if pieces < 2:
            raise ValueError(f"maxout needs at least 2 pieces, got {pieces}")
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x):
        return self.linear(x).view(x.shape[0], -1, self.pieces).amax(dim=2)

    def extra_repr(self):
        return f"pieces={self.pieces}"


class MinibatchStdDev(nn.Module):
    """Karras et al. 2018 (ProGAN) sec 3: one extra channel (4-D) or feature (2-D) with the
    batch's variety.

    Groups are consecutive runs of G = min(group_size, N) examples (the whole batch if G does
    not divide N); per group s = mean over features and pixels of sqrt(Var_group + 1e-8), with
    the population variance, broadcast to every member. Consecutive (not ProGAN's strided)
    groups keep a batch of reals followed by fakes from being mixed in one group.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x):
        n = x.shape[0]
        g = min(self.group_size, n)
        if n % g:
            g = n
        y = x.reshape(n // g, g, -1)
        std = torch.sqrt(y.var(dim=1, unbiased=False) + 1e-8).mean(1)      # [N / G]
        stat = std.repeat_interleave(g).view(n, 1, *([1] * (x.dim() - 2)))
        return torch.cat([x, stat.expand(n, 1, *x.shape[2:])], dim=1)

    def extra_repr(self):
        return f"group_size={self.group_size}"


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018), W / sigma(W), on every Linear and
    convolution (transposed ones included) inside `module`; already normalised ones are left.

    Embeddings are left alone, so the projection embedding keeps its own scale.
    """
    targets = [m for m in module.modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
               and not parametrize.is_parametrized(m, "weight")]
    for m in targets:
        spectral_norm(m)
    return module


def check_labels(num_classes: int | None, labels) -> None:
    """Labels go to conditional nets only, and conditional nets need them (programming errors)."""
    if num_classes is None and labels is not None:
        raise ValueError("labels given to an unconditional network (num_classes is None)")
    if num_classes is not None and labels is None:
        raise ValueError(f"conditional network ({num_classes} classes) called without labels")


class LabelConcat(nn.Module):
    """Generator conditioning: z [B, latent] -> cat([z, embed(y)]) [B, latent + embed_dim];
    z passes unchanged when num_classes is None."""

    def __init__(self, latent_dim: int, num_classes: int | None = None, embed_dim: int = 16):
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes is not None else None
        self.out_features = latent_dim + (embed_dim if num_classes is not None else 0)

    def forward(self, z, labels=None):
        check_labels(self.num_classes, labels)
        return z if self.embed is None else torch.cat([z, self.embed(labels)], dim=1)


class ProjectionHead(nn.Module):
    """Discriminator head: score = linear(h) + <embed(y), h> (projection discriminator,
    Miyato & Koyama 2018), or just linear(h) when num_classes is None. h [B, F] -> [B] logits."""

    def __init__(self, in_features: int, num_classes: int | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.linear = nn.Linear(in_features, 1)
        self.embed = None
        if num_classes is not None:
            self.embed = nn.Embedding(num_classes, in_features)
            # N(0, 1) rows would make <embed(y), h> dwarf linear(h) for wide h; the reference
            # implementation uses Glorot-uniform
            nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, h, labels=None):
        check_labels(self.num_classes, labels)
        score = self.linear(h).squeeze(1)
        if self.embed is not None:
            score = score + (self.embed(labels) * h).sum(1)
        return score


class OutputRange(nn.Module):
    """Generator output squashing: None -> identity (points), (-1, 1) -> tanh,
    other (lo, hi) -> lo + (hi - lo) * sigmoid."""

    def __init__(self, value_range: Sequence[float] | None):
        super().__init__()
        if value_range is not None:
            lo, hi = (float(v) for v in value_range)
            if not lo < hi:
                raise ValueError(f"value_range needs lo < hi, got {tuple(value_range)}")
            value_range = (lo, hi)
        self.value_range = value_range

    def forward(self, x):
        if self.value_range is None:
            return x
        lo, hi = self.value_range
        if (lo, hi) == (-1.0, 1.0):
            return torch.tanh(x)
        return lo + (hi - lo) * torch.sigmoid(x)

    def extra_repr(self):
        return f"value_range={self.value_range}"
