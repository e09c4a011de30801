"""The method protocol (DESIGN.md section 3).

A method is an nn.Module that owns its networks and its update rule. The engine calls only:

- `configure_optimizers(optimizer_cfg) -> dict[str, Optimizer]`
- `train_step(batch, step) -> dict[str, Tensor]`   (forward, backward and optimizer steps)
- `eval_step(batch) -> dict[str, Tensor]`          (no gradients)
- `summarize(means) -> dict[str, float]`           (derived metrics from averaged ones)

and looks for capabilities by name, present only where they make sense:
`encode(x)`, `decode(z)`, `reconstruct(x)`, `sample(n, labels=None)`. Images going in and out of
these are in data units (the data set's `range`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gentool.config import instantiate
from gentool.errors import GentoolError

# Keys of an optimizer node that describe the schedule, read by the engine, not the optimizer.
SCHEDULE_KEYS = ("schedule",)


def build_optimizer(params: Iterable[nn.Parameter], optimizer_cfg: Any) -> torch.optim.Optimizer:
    node = OmegaConf.to_container(optimizer_cfg, resolve=True) if isinstance(
        optimizer_cfg, DictConfig) else dict(optimizer_cfg)
    for key in SCHEDULE_KEYS:
        node.pop(key, None)
    return instantiate(node, params=list(params))


class Method(nn.Module):
    """Shared plumbing for methods: optimizer stepping with AMP scaling, clipping, grad norms."""

    def __init__(self):
        super().__init__()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        # Set by the engine: a GradScaler for fp16 (None otherwise), the clipping threshold, the
        # autocast context for forward passes, and whether this step's diagnostics (gradient
        # norms, per-pixel errors) are wanted: only on logging steps, so the hot loop does not
        # pay for them.
        self.grad_scaler: torch.amp.GradScaler | None = None
        self.grad_clip: float | None = None
        self.autocast = contextlib.nullcontext
        self.diagnostics = False
        # Set by the engine in data-parallel runs: averages an optimizer's gradients over the
        # processes after backward (engine.distributed.average_gradients).
        self.sync_gradients = None

    def configure_optimizers(self, optimizer_cfg) -> dict[str, torch.optim.Optimizer]:
        """One optimizer over all parameters; methods with several players override this."""
        self.optimizers = {"model": build_optimizer(self.parameters(), optimizer_cfg)}
        return self.optimizers

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def eval_step(self, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def summarize(self, means: dict[str, float]) -> dict[str, float]:
        """Metrics derived from averaged step metrics (e.g. a VAE's ELBO from recon and kl).

        Steps return only what they must reduce per batch; anything linear in those is derived
        here once per logging window or evaluation instead of on every step.
        """
        return means

    def optimizer_step(self, loss: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
        """Backward, optional unscale/clip, step, zero_grad; returns `grad_norm/<name>` on
        diagnostics steps."""
        optimizer = self.optimizers[name]
        scaler = self.grad_scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if self.sync_gradients is not None:
            self.sync_gradients(optimizer)
        metrics = {}
        if self.grad_clip is not None or self.diagnostics:
            if scaler is not None:
                scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"]
                      if p.grad is not None]
            max_norm = self.grad_clip if self.grad_clip is not None else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            metrics[f"grad_norm/{name}"] = norm.detach()
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return metrics


# What each kind of reconstruction loss is called in messages, and the loss options that are one.
_LOSS_KINDS = {"Likelihood": ("a likelihood", "loss=bernoulli or loss=gaussian"),
               "ReconstructionLoss": ("a reconstruction loss",
                                      "loss=mse, loss=bernoulli or loss=gaussian")}


def check_reconstruction_loss(loss: Any, wanted: type, model: str, value_range) -> None:
    """Refuse a loss object that does not fit the model, with the fix in the message."""
    if not isinstance(loss, wanted):
        got = getattr(loss, "name", type(loss).__name__)
        kind, choices = _LOSS_KINDS[wanted.__name__]
        raise GentoolError(f"loss={got} does not fit model={model}, which needs {kind}; use "
                           f"{choices}.")
    loss.check_data_range(value_range)


class TwoPlayerMethod(Method):
    """A game between `self.generator` and `self.discriminator`, one optimizer each: the run's
    `optimizer.*` with each player's overrides (`generator_optimizer`, `discriminator_optimizer`
    of the model config, e.g. its own lr and betas) merged over it."""

    def set_player_optimizers(self, generator: dict | None, discriminator: dict | None) -> None:
        self.player_optimizers = {"generator": dict(generator or {}),
                                  "discriminator": dict(discriminator or {})}

    def configure_optimizers(self, optimizer_cfg):
        base = OmegaConf.to_container(optimizer_cfg, resolve=True) if isinstance(
            optimizer_cfg, DictConfig) else dict(optimizer_cfg)
        self.optimizers = {
            name: build_optimizer(getattr(self, name).parameters(),
                                  {**base, **self.player_optimizers[name]})
            for name in ("generator", "discriminator")}
        return self.optimizers
