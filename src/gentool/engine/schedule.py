"""Learning-rate schedules as pure functions of the step.

The learning rate is set from the step count before every optimizer step, so a schedule has no
state to save and a resumed run follows exactly the same curve.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from gentool.errors import GentoolError
from gentool.options import not_one_of

SCHEDULES = ("constant", "cosine", "linear", "step")


def check_schedule(schedule: Any) -> None:
    """Refuse a schedule name `lr_factor` does not know. gentool train calls it with its other
    checks, before the data is loaded: `lr_factor` meets the name only at the first step after
    the warm-up, and a resumed finished run never calls it."""
    name = schedule.get("name", "constant")
    if name not in SCHEDULES:
        raise _unknown(name)


def _unknown(name: Any) -> GentoolError:
    return not_one_of("trainer.schedule.name", name, SCHEDULES,
                      "e.g. trainer.schedule.name=cosine.")


def lr_factor(schedule: Any, step: int, max_steps: int) -> float:
    """Multiplier of the base learning rate at `step` (0-based): linear warm-up, then the decay."""
    name = schedule.get("name", "constant")
    warmup = int(schedule.get("warmup_steps", 0))
    if step < warmup:
        return (step + 1) / warmup
    floor = float(schedule.get("min_lr_ratio", 0.0))
    progress = (step - warmup) / max(1, max_steps - warmup)
    if name == "constant":
        return 1.0
    if name == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if name == "linear":
        return floor + (1 - floor) * max(0.0, 1 - progress)
    if name == "step":
        return float(schedule.get("gamma", 0.1)) ** ((step - warmup) // int(schedule["step_size"]))
    raise _unknown(name)


def apply_schedule(optimizers: dict[str, torch.optim.Optimizer], schedule: Any, step: int,
                   max_steps: int) -> float:
    factor = lr_factor(schedule, step, max_steps)
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
    return factor
