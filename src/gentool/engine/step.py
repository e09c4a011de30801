"""The step context: what the engine hands every `train_step` (DESIGN.md section 3).

A method does its own forward, backward and optimizer steps, but how a forward pass is cast, how
gradients are scaled, clipped and averaged across processes, and whether this step measures
diagnostics are the engine's settings: they travel in this object, as an argument, so a method
called outside `fit` (a test, a script) runs with exactly the settings it is handed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch


@dataclass
class StepContext:
    """`optimizers` by the names `configure_optimizers` gave them; `autocast` a zero-argument
    factory of the context for forward passes; `grad_scaler` a GradScaler (fp16) or None;
    `grad_clip` the global-norm threshold or None; `sync_gradients(optimizer)` averages an
    optimizer's gradients across processes (None in a single process).

    `step` (0-based) and `diagnostics` (a logging step: gradient norms and per-pixel errors are
    measured, which costs time the other steps do not pay) are set by the engine before each step.
    """

    optimizers: dict[str, torch.optim.Optimizer]
    autocast: Callable[[], ContextManager] = contextlib.nullcontext
    grad_scaler: torch.amp.GradScaler | None = None
    grad_clip: float | None = None
    sync_gradients: Callable[[torch.optim.Optimizer], None] | None = None
    step: int = 0
    diagnostics: bool = False

    def optimizer_step(self, loss: torch.Tensor, name: str) -> dict[str, torch.Tensor]:
        """Backward, gradient averaging, optional unscale/clip, step, zero_grad; returns
        `grad_norm/<name>` on diagnostics steps (and whenever clipping measures it)."""
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
