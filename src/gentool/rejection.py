"""Rejection of generator draws by the discriminator's score.

`reject_lowest(method, n, rate)` draws from the generator and drops the share `rate` of draws
that the discriminator scores lowest: the threshold is the `rate`-quantile of the logits of
10,000 burn-in draws (per class, for draws of given classes), and draws are kept while their
logit is at or above it until n are kept. The burn-in costs 10,000 passes through both networks
before the first draw is kept (per class asked for): on one thread of a 2-core Xeon VM, 0.1-0.2 s
for the toy-set GANs, about 3 s for experiment=dcgan_fashion_mnist and about 30 s for a
conditional model of 10 classes (model=cgan dataset=fashion_mnist); a caller shows its progress
through `progress`.

This is the deterministic form of discriminator rejection sampling (DRS; Azadi, Olsson, Darrell,
Goodfellow and Odena, ICLR 2019). DRS keeps a draw with probability sigmoid(F(x) - gamma), F(x)
= D~(x) - D~_M - log(1 - exp(D~(x) - D~_M - eps)), which turns generator samples into data
samples when the logit D~ is the log density ratio of an optimal discriminator. A discriminator
trained with a gradient penalty is smooth, its logits on draws spread over well under one unit,
and sigmoid(F - gamma) then keeps about half of all draws nearly at random: on the grid of 25
Gaussians (experiment=gan_toy_small with D at lr 1e-3, G at 2.5e-4 and R1 0.01, at 20,000
steps), DRS moved the high-quality share from 80% to 83.5% at any gamma quantile, even after
2,000 further discriminator steps against the final generator (89%), where dropping the
lowest-scored 20% reached 97.6%. The rank of the logit carries the information; this rule uses
only the rank.

It changes how samples are drawn, not the model: every figure with it is reported beside the
plain one (training's test/rejection/* beside test/*).
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from gentool.capabilities import Discriminates, Samples, conditional_classes
from gentool.errors import GentoolError

BURN_IN = 10_000   # draws whose logits set the threshold
BATCH = 2_500      # draws scored at once
QUIET_S = 1.0      # progress is told only once the burn-in has run this long (s): not for toys

# progress(scored, total): burn-in draws scored so far, of all the burn-in draws of the call.
Progress = Callable[[int, int], None]


def check_rate(rate: float, where: str) -> None:
    if not 0.0 <= rate < 1.0:
        raise GentoolError(f"{where}={rate} must be a share of draws in [0, 1); e.g. 0.2 drops "
                           "the fifth the discriminator scores lowest, 0 keeps every draw.")


def rejection_rate(method, asked: float | None) -> float:
    """The share of draws a sampling command drops: `asked` (its rejection= option) when given,
    else the model's own (model.rejection); 0 for a model without a discriminator."""
    if asked is not None:
        check_rate(asked, "rejection")
        if asked > 0 and not isinstance(method, Discriminates):
            raise GentoolError(f"rejection={asked} drops draws by a discriminator's score, and "
                               "this model has none; drop rejection= for it.")
        return float(asked)
    return float(method.rejection_rate) if isinstance(method, Discriminates) else 0.0


@torch.no_grad()
def reject_lowest(method, n: int, rate: float, labels=None, temperature: float = 1.0,
                  progress: Progress | None = None) -> torch.Tensor:
    """n draws of `method` (a model that samples and discriminates) with the lowest-scored share
    `rate` dropped. `labels` (class-conditional models) are handled one class at a time, with a
    threshold per class, so every draw has the label asked for, in the order asked. `progress`
    hears how far the burn-in is, each time it passes another tenth of it."""
    if not (isinstance(method, Samples) and isinstance(method, Discriminates)):
        raise GentoolError("rejection by the discriminator needs a model with a discriminator "
                           "(a GAN); set the rejection rate to 0 for this model.")
    check_rate(rate, "the rejection rate")
    classes = conditional_classes(method)
    if classes and labels is None:   # uniform over classes, as the model's own sample() draws
        labels = torch.randint(classes, (n,))
    if labels is None:
        return _reject_lowest_one(method, n, rate, None, temperature,
                                  BurnInMeter(BURN_IN, progress))
    labels = torch.as_tensor(labels).long().reshape(-1)
    if labels.numel() != n:
        raise GentoolError(f"{labels.numel()} labels were given for {n} samples; give one each.")
    asked = labels.unique().tolist()
    meter = BurnInMeter(BURN_IN * len(asked), progress)
    out = None
    for label in asked:
        where = (labels == label).nonzero().flatten()
        kept = _reject_lowest_one(method, where.numel(), rate, label, temperature, meter)
        if out is None:
            out = kept.new_empty((n, *kept.shape[1:]))
        out[where.to(out.device)] = kept
    return out


class BurnInMeter:
    """Counts the burn-in draws scored, and tells `progress` each time the count passes another
    tenth of `total`: at most ten calls, fewer when a step passes more than one tenth (four for
    one class, whose burn-in is scored in batches of a quarter of it), and none before the
    burn-in has run QUIET_S seconds by `clock`."""

    def __init__(self, total: int, progress: Progress | None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.progress, self.scored = total, progress, 0
        self.clock, self.started = clock, clock()

    def add(self, count: int) -> None:
        tenths = self.scored * 10 // self.total
        self.scored += count
        if self.progress is None or self.scored * 10 // self.total == tenths:
            return
        if self.clock() - self.started >= QUIET_S:
            self.progress(self.scored, self.total)


def _draw(method, count: int, label, temperature: float):
    labels = None if label is None else [label] * count
    x = method.sample(count, labels=labels, temperature=temperature)
    return x, method.discriminate(x, labels=labels).float().reshape(-1)


def _reject_lowest_one(method, n: int, rate: float, label, temperature: float,
                       meter: BurnInMeter) -> torch.Tensor:
    if rate == 0.0:
        return method.sample(n, labels=None if label is None else [label] * n,
                             temperature=temperature)
    scored = []
    for done in range(0, BURN_IN, BATCH):
        count = min(BATCH, BURN_IN - done)
        scored.append(_draw(method, count, label, temperature)[1])
        meter.add(count)
    logits = torch.cat(scored)
    if not torch.isfinite(logits).all():
        raise GentoolError("the discriminator scored some draws as NaN or infinite, so it cannot "
                           "rank them; set the rejection rate to 0 for this model.")
    threshold = torch.quantile(logits.double().cpu(), rate).item()
    kept, have = [], 0
    while have < n:   # about n / (1 - rate) draws: the threshold is a quantile of the same law
        x, logit = _draw(method, BATCH, label, temperature)
        keep = logit >= threshold
        kept.append(x[keep])
        have += int(keep.sum())
    return torch.cat(kept)[:n]
