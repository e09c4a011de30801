"""Metric accumulation without per-step host synchronisation, and test-split evaluation."""

from __future__ import annotations

import math
import time

import torch

from gentool.capabilities import Discriminates, Samples
from gentool.data.batching import examples_in, first_examples
from gentool.engine.eval_mode import seeded_eval
from gentool.rejection import reject_lowest


class MetricWindow:
    """Sums metric tensors on their device between logging steps.

    Reading a GPU tensor's value stalls the device, so the hot loop only adds; `flush` turns the
    window into floats once per `trainer.log_every` steps, with the throughput over the window.
    Each metric is averaged over the steps that reported it (diagnostics such as gradient norms
    are measured on logging steps only).
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.images = 0
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor], images: int) -> None:
        for key, value in metrics.items():  # methods return detached float scalars
            if key in self.sums:
                self.sums[key] += value
                self.counts[key] += 1
            else:
                self.sums[key] = value.clone()
                self.counts[key] = 1
        self.images += images

    def first_non_finite(self) -> str | None:
        """"key=value" of the first metric whose sum is not finite (a device read: call it on
        checkpoint steps only), None when all are."""
        for key, value in self.sums.items():
            if not bool(torch.isfinite(value)):
                return f"{key}={value.item()}"
        return None

    def flush(self) -> dict[str, float]:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        means = {k: v.item() / self.counts[k] for k, v in self.sums.items()}
        means["images_per_second"] = self.images / elapsed
        self.__init__()
        return means


def first_non_finite(metrics: dict[str, float]) -> str | None:
    for key, value in metrics.items():
        if not math.isfinite(value):
            return f"{key}={value}"
    return None


@torch.no_grad()
def evaluate(method, batches, max_examples: int | None, seed: int = 0) -> dict[str, float]:
    """Example-weighted means of `method.eval_step` over (up to max_examples of) a split.

    Runs in a forked RNG with a fixed seed: stochastic metrics (a VAE's sampled z) use the same
    noise at every evaluation, and the training RNG stream is untouched, so how often a run
    evaluates never changes what it learns.
    """
    with seeded_eval(method, seed):
        return _evaluate(method, batches, max_examples)


def _evaluate(method, batches, max_examples):
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    for batch in batches.epoch():
        if max_examples is not None and seen >= max_examples:
            break
        if max_examples is not None and seen + examples_in(batch) > max_examples:
            batch = first_examples(batch, max_examples - seen)
        count = examples_in(batch)
        for key, value in method.eval_step(batch).items():
            weighted = value.detach().float() * count
            sums[key] = sums[key] + weighted if key in sums else weighted
        seen += count
    return method.summarize({k: v.item() / max(seen, 1) for k, v in sums.items()})


# PacGAN and VEEGAN score mode coverage on this many generated samples.
SAMPLE_METRIC_EXAMPLES = 2500


@torch.no_grad()
def evaluate_samples(method, data, seed: int = 0) -> dict[str, float]:
    """Metrics of generated samples that the data set defines (mode coverage of the toy sets).

    A model that rejects draws by its discriminator's score (model.rejection > 0) is scored on
    such draws too, under `rejection/`, beside its plain draws: rejection changes how samples
    are drawn, so its figures never replace the model's own."""
    measure = getattr(data, "sample_metrics", None)
    if measure is None or not isinstance(method, Samples):
        return {}
    with seeded_eval(method, seed):
        scores = measure(method.sample(SAMPLE_METRIC_EXAMPLES).float())
    if isinstance(method, Discriminates) and method.rejection_rate > 0:
        with seeded_eval(method, seed):
            kept = reject_lowest(method, SAMPLE_METRIC_EXAMPLES, method.rejection_rate)
        scores.update({f"rejection/{k}": v for k, v in measure(kept.float()).items()})
    return scores
