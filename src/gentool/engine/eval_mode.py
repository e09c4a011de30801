"""A module in evaluation mode with a fixed-seed, forked RNG, for work beside training.

Pictures, evaluations and sample metrics run this way: the same noise every time (frames and
numbers compare over steps), and the training RNG stream and the module's train/eval mode are
restored afterwards, also when the work raises, so such work never changes what a run learns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded_eval(module: torch.nn.Module, seed: int) -> Iterator[torch.nn.Module]:
    was_training = module.training
    device = next(module.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        module.eval()
        try:
            yield module
        finally:
            module.train(was_training)
