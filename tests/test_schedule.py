"""Learning-rate schedules are pure functions of the step (so resume is exact)."""

import math

import pytest
import torch

from gentool.engine.schedule import apply_schedule, check_schedule, lr_factor
from gentool.errors import GentoolError


def test_warmup_then_cosine_to_floor():
    schedule = {"name": "cosine", "warmup_steps": 4, "min_lr_ratio": 0.1}
    assert [lr_factor(schedule, s, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # after warm-up, progress = (s - 4) / 10; at s = 9 halfway: 0.1 + 0.9 * 0.5 * (1 + cos(pi/2))
    assert lr_factor(schedule, 9, 14) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(schedule, 14, 14) == pytest.approx(0.1)


def test_linear_step_and_constant():
    assert lr_factor({"name": "linear"}, 5, 10) == pytest.approx(0.5)
    assert lr_factor({"name": "step", "step_size": 3, "gamma": 0.5}, 7, 100) == 0.25
    assert lr_factor({"name": "constant"}, 999, 10) == 1.0


def test_unknown_schedule_is_a_clear_error():
    with pytest.raises(GentoolError, match="trainer.schedule.name is 'wobbly' but must be one of "
                                           "constant, cosine, linear, step"):
        lr_factor({"name": "wobbly"}, 0, 10)


def test_unknown_schedule_is_refused_before_any_step_even_during_warm_up():
    # lr_factor returns the warm-up factor before it looks at the name.
    assert lr_factor({"name": "wobbly", "warmup_steps": 5}, 0, 10) == 0.2
    with pytest.raises(GentoolError, match="trainer.schedule.name is 'wobbly'"):
        check_schedule({"name": "wobbly", "warmup_steps": 5})
    for name in ("constant", "cosine", "linear", "step"):
        check_schedule({"name": name})


def test_apply_schedule_sets_lr_from_the_initial_lr():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    for step in (5, 0, 3):  # any order: the lr depends on the step alone
        apply_schedule({"model": optimizer}, {"name": "linear"}, step, 10)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2 * (1 - step / 10))
    assert not math.isnan(optimizer.param_groups[0]["initial_lr"])
