"""What `sample`, `eval` and `finetune` start from: a trained method rebuilt from its checkpoint.

The method is rebuilt from the config stored in the checkpoint (the user never re-states
`model=`), its weights loaded, on the device the command asks for, in eval mode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from gentool.config import check_complete
from gentool.engine.checkpoint import checkpoint_of, load_checkpoint, load_into
from gentool.engine.device import describe_device, resolve_device, seed_everything
from gentool.errors import GentoolError
from gentool.methods import build_method

log = logging.getLogger("gentool")


@dataclass
class Trained:
    method: torch.nn.Module
    train_cfg: DictConfig     # the config the method was trained with
    step: int                 # the train steps it had completed
    device: torch.device
    checkpoint: Path          # the file it was read from


def load_trained_method(checkpoint: str | Path, device: torch.device) -> Trained:
    """The method of a checkpoint, weights loaded, on `device`, in eval mode."""
    state = load_checkpoint(checkpoint)
    train_cfg = OmegaConf.create(state["config"])
    method = build_method(train_cfg)
    load_into(method, state, checkpoint, fix="use a checkpoint written by gentool train")
    return Trained(method.to(device).eval(), train_cfg, int(state["step"]), device,
                   Path(checkpoint))


def start_from_checkpoint(cfg: DictConfig, command: str,
                          check: Callable[[Path], None] = lambda checkpoint: None,
                          wanted: str = "a checkpoint",
                          example: str = "<run dir>/checkpoints/last.pt") -> Trained:
    """A command's start: no value of its config left as `???` (checked here for sample, eval
    and finetune, before anything reads one; `check` needs not repeat it), its `checkpoint=`
    required (a checkpoint file, or a train run directory for its checkpoints/last.pt), then the
    command's own `check` of its options given that file (before anything is loaded), the device
    resolved and logged, the trained method loaded, and every RNG seeded from `seed=`."""
    check_complete(cfg)
    if not cfg.checkpoint:
        raise GentoolError(f"gentool {command} needs {wanted}; add checkpoint={example} (or "
                           "checkpoint=<run dir>).")
    checkpoint = checkpoint_of(cfg.checkpoint, "checkpoint")
    check(checkpoint)
    device = resolve_device(cfg.device)
    log.info("Device: %s", describe_device(device))
    trained = load_trained_method(checkpoint, device)
    seed_everything(cfg.seed)
    return trained
