"""Discriminator rejection sampling (DRS; Azadi, Olsson, Darrell, Goodfellow and Odena, "Discriminator
Rejection Sampling", ICLR 2019).

A discriminator trained to optimality against the generator p_g has logit
D~(x) = log p_data(x) / p_g(x), so accepting a draw x ~ p_g with probability
p_data(x) / (M p_g(x)) = exp(D~(x) - D~_M), where D~_M is the largest logit, turns generator
samples into data samples. That exact rule accepts almost nothing when D~_M is an outlier, so
the paper accepts with probability sigmoid(F(x)) instead, where

    F(x) = D~(x) - D~_M - log(1 - exp(D~(x) - D~_M - eps)) - gamma,

which is exp(D~(x) - D~_M) / (1 - exp(D~(x) - D~_M)) before the shift by gamma (so the
sigmoid gives back exp(D~ - D~_M) at gamma = 0), and gamma sets the overall acceptance rate.
As in the paper, D~_M is first estimated on a burn-in set of draws and raised whenever a
larger logit is met, and gamma is a percentile of F over the burn-in draws: with
`gamma_quantile` q, a draw whose F sits at the q-th quantile is accepted half of the time,
draws above it more often, draws far below it rarely.

It changes how samples are drawn, not the model; figures with it are reported beside those
without it (test/drs/* beside test/*). The discriminator is used as trained; the paper also
trains D further against the final generator first, which needs the data and is not done here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gentool.capabilities import Discriminates, Samples, conditional_classes
from gentool.errors import GentoolError

# Keeps log(1 - exp(.)) finite for the draw with the largest logit (the paper's epsilon).
EPSILON = 1e-6


@dataclass(frozen=True)
class DRSettings:
    burn_in: int = 10_000             # draws that estimate D~_M and gamma
    gamma_quantile: float = 0.8       # the quantile of F over the burn-in draws taken as gamma
    batch: int = 2_500                # draws scored at once
    max_draws_per_sample: int = 200   # give up below 0.5% acceptance rather than loop for ever

    def __post_init__(self):
        if self.burn_in < 1 or self.batch < 1 or self.max_draws_per_sample < 1:
            raise GentoolError("DRS needs burn_in, batch and max_draws_per_sample >= 1.")
        if not 0.0 <= self.gamma_quantile <= 1.0:
            raise GentoolError(f"the DRS gamma quantile must lie in [0, 1], got "
                               f"{self.gamma_quantile}; 0.8 is the default.")


def drs_log_odds(logits: torch.Tensor, max_logit: float, gamma: float) -> torch.Tensor:
    """F(x) of the module docstring for discriminator logits D~(x); acceptance is sigmoid(F).

    In float64 with expm1: at the largest logit, 1 - exp(-eps) is 1e-6, below float32's
    resolution near 1."""
    shifted = logits.double() - max_logit
    return shifted - torch.log(-torch.expm1(shifted - EPSILON)) - gamma


@dataclass
class DRSResult:
    samples: torch.Tensor
    acceptance: float       # accepted / drawn after the burn-in
    max_logit: float
    gamma: float


@torch.no_grad()
def rejection_sample(method, n: int, labels=None, temperature: float = 1.0,
                     settings: DRSettings = DRSettings()) -> DRSResult:
    """n samples of `method` filtered by DRS. `labels` (class-conditional models) are handled
    one class at a time, so every returned sample has the label asked for, in the order asked."""
    if not (isinstance(method, Samples) and isinstance(method, Discriminates)):
        raise GentoolError("discriminator rejection sampling needs a model with a "
                           "discriminator (a GAN); drop the rejection option for this model.")
    classes = conditional_classes(method)
    if classes and labels is None:   # uniform over classes, as the model's own sample() draws
        labels = torch.randint(classes, (n,))
    if labels is None:
        return _rejection_sample_one(method, n, None, temperature, settings)
    labels = torch.as_tensor(labels).long().reshape(-1)
    if labels.numel() != n:
        raise GentoolError(f"{labels.numel()} labels were given for {n} samples; give one each.")
    out, parts = None, []
    for label in labels.unique().tolist():
        where = (labels == label).nonzero().flatten()
        part = _rejection_sample_one(method, where.numel(), label, temperature, settings)
        if out is None:
            out = part.samples.new_empty((n, *part.samples.shape[1:]))
        out[where.to(out.device)] = part.samples
        parts.append(part)
    # Per class: D~_M and gamma are estimated for each class's own draws.
    return DRSResult(out, sum(p.acceptance for p in parts) / len(parts),
                     max(p.max_logit for p in parts), math.nan)


def _draw(method, count: int, label, temperature: float):
    labels = None if label is None else [label] * count
    x = method.sample(count, labels=labels, temperature=temperature)
    return x, method.discriminate(x, labels=labels).float().reshape(-1)


def _rejection_sample_one(method, n: int, label, temperature: float,
                          settings: DRSettings) -> DRSResult:
    logits = torch.cat([_draw(method, min(settings.batch, settings.burn_in - done), label,
                              temperature)[1]
                        for done in range(0, settings.burn_in, settings.batch)])
    max_logit = float(logits.max())
    gamma = float(torch.quantile(drs_log_odds(logits, max_logit, 0.0).double().cpu(),
                                 settings.gamma_quantile))
    kept, have, drawn = [], 0, 0
    limit = max(n, 1) * settings.max_draws_per_sample
    while have < n:
        if drawn >= limit:
            raise GentoolError(f"discriminator rejection sampling accepted {have} of {drawn} "
                               f"draws; lower the gamma quantile to accept more.")
        x, logit = _draw(method, settings.batch, label, temperature)
        drawn += x.shape[0]
        max_logit = max(max_logit, float(logit.max()))
        accept = torch.rand_like(logit) < torch.sigmoid(drs_log_odds(logit, max_logit, gamma))
        kept.append(x[accept])
        have += int(accept.sum())
    samples = torch.cat(kept)[:n]
    return DRSResult(samples, have / drawn if drawn else math.nan, max_logit, gamma)
