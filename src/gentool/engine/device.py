"""Device choice, seeding and mixed precision."""

from __future__ import annotations

import contextlib
import logging
import random
import re
from functools import partial

import numpy as np
import torch

from gentool.errors import GentoolError
from gentool.options import not_one_of

log = logging.getLogger("gentool")

PRECISIONS = ("32", "bf16", "16")
_DEVICE_FORM = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then MPS, then CPU; explicit choices are checked to exist."""
    if not _DEVICE_FORM.match(str(name)):
        raise GentoolError(f"device={name} is not understood; use auto, cpu, cuda, cuda:N or mps.")
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GentoolError(f"device={name} was asked for but this machine has no usable CUDA "
                               "GPU; use device=auto or device=cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GentoolError(f"device={name} does not exist: this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GentoolError("device=mps was asked for but MPS is not available; use device=auto.")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_determinism(deterministic: bool) -> None:
    # cuDNN autotuning picks the fastest kernels but may pick different ones per run.
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def check_precision(precision: str) -> None:
    """Refuse a trainer.precision that is none of PRECISIONS (train checks it before any data is
    loaded or the model is built)."""
    if precision not in PRECISIONS:
        raise not_one_of("trainer.precision", precision, PRECISIONS,
                         "e.g. trainer.precision=32.")


def autocast_for(precision: str, device: torch.device):
    """A zero-argument factory of the autocast context for forward passes."""
    check_precision(precision)
    if precision == "32":
        return contextlib.nullcontext
    if precision == "16" and device.type != "cuda":
        raise GentoolError("trainer.precision=16 needs a CUDA device; use trainer.precision=bf16 "
                           "or 32 here.")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)


def grad_scaler_for(precision: str, device: torch.device):
    """fp16 needs loss scaling against gradient underflow; bf16 and fp32 do not."""
    if precision != "16":
        return None
    return torch.amp.GradScaler(device.type)
