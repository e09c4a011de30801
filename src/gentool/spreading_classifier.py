"""`finetune.head=label_spreading`: a frozen encoder's codes classified by label spreading.

The encoder (pretrained, or a random one for the control) encodes the whole train split once;
its codes, standardised by their own mean and std when asked, then scaled to unit length, are the
nodes of the k-NN graph the few labels spread over (gentool.label_spreading). A test image gets
the summed class distributions of its nearest training codes. Nothing is trained by gradient: the
unlabelled training images enter through the graph, which is where this head's gain over a
network trained on the labels alone comes from (with a good encoder, a larger one: the control
row in docs/benchmarks.md spreads on a random encoder's codes).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gentool.label_spreading import check_spreading, label_spreading, unit_rows, vote


@torch.no_grad()
def encode_all(method, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The codes of `x` in eval mode, in batches (the method's mode is restored after)."""
    training = method.training
    method.eval()
    codes = torch.cat([method.encode(x[i:i + batch_size]).float()
                       for i in range(0, len(x), batch_size)])
    method.train(training)
    return codes


class Pixels(nn.Module):
    """An 'encoder' whose code is the image itself, flattened: label spreading on pixels, the
    control that shows what the unlabelled images give without any encoder."""

    def __init__(self, shape):
        super().__init__()
        self.latent_dim = math.prod(shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class SpreadingClassifier(nn.Module):
    """x -> frozen encoder -> standardised, unit-length code -> vote of its `neighbours` nearest
    training codes' spread class distributions. `fit` spreads the labels; until then it has no
    training codes. Its state (encoder, code statistics, training codes and their distributions)
    is all a prediction needs."""

    def __init__(self, method, num_classes: int, neighbours: int, alpha: float, iterations: int,
                 standardize: bool):
        super().__init__()
        self.method, self.num_classes = method, num_classes
        self.neighbours, self.alpha, self.iterations = neighbours, alpha, iterations
        self.standardize = standardize
        method.requires_grad_(False)
        self.register_buffer("code_mean", torch.zeros(method.latent_dim))
        self.register_buffer("code_std", torch.ones(method.latent_dim))
        self.register_buffer("train_points", torch.zeros(0, method.latent_dim))
        self.register_buffer("distributions", torch.zeros(0, num_classes))

    def points(self, codes: torch.Tensor) -> torch.Tensor:
        return unit_rows((codes - self.code_mean) / self.code_std)

    @torch.no_grad()
    def fit(self, train_x: torch.Tensor, labelled: torch.Tensor, labels: torch.Tensor) -> None:
        """Spread `labels` (of train_x[labelled]) over the codes of all of `train_x`."""
        check_spreading(self.neighbours, len(train_x))
        codes = encode_all(self.method, train_x)
        if self.standardize:
            self.code_mean.copy_(codes.mean(0))
            # A dimension the encoder never varies (a dead unit) keeps its scale.
            std = codes.std(0)
            self.code_std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))
        self.train_points = self.points(codes)
        self.distributions = label_spreading(self.train_points, labelled, labels, self.num_classes,
                                             self.neighbours, self.alpha, self.iterations)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores of x (argmax: the predicted class)."""
        queries = self.points(encode_all(self.method, x))
        return vote(queries, self.train_points, self.distributions, self.neighbours)
