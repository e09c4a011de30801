"""The generic training loop. It never knows which objective it trains (DESIGN.md section 3).

Progress is counted in optimizer steps: checkpoint `step` = number of completed train steps, the
batch of step s is a pure function of (seed, s), the learning rate a pure function of s, and the
RNG states are saved with the weights, so a resumed run ends with the same weights as an
uninterrupted one (on CPU, deterministic settings).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from gentool.data.batching import concatenated, examples_in
from gentool.engine.checkpoint import (capture_rng_state, load_checkpoint, restore_rng_state,
                                       save_checkpoint)
from gentool.engine import distributed
from gentool.engine.device import autocast_for, grad_scaler_for
from gentool.engine.metering import MetricWindow, evaluate, evaluate_samples, first_non_finite
from gentool.engine.schedule import apply_schedule
from gentool.engine.stop import STOP_SIGNALS, RunStopped, StopRequested
from gentool.engine.tensorboard import VisualLogger, log_hparams
from gentool.errors import GentoolError, TrainingDiverged

log = logging.getLogger("gentool")


class _NoWriter:
    """What processes other than rank 0 log to: nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def fit(method, data, cfg, run_dir: Path, device: torch.device, hparams: dict[str, Any],
        rank: distributed.Rank = distributed.Rank(),
        on_start: Callable[[], None] | None = None) -> dict[str, float]:
    """Train `method` on `data` to `cfg.trainer.max_steps`; returns the final test metrics.

    `hparams` (the run's distinguishing choices) go to TensorBoard's HParams tab with them. In a
    data-parallel run (`rank`), only rank 0 evaluates, logs and writes checkpoints; the others
    return no metrics. `on_start` is called once the checkpoint to resume from (if any) has been
    accepted, before anything is written to `run_dir`. A stop signal ends the run with
    `RunStopped` after a checkpoint of the current step.
    """
    # Plain Python values: DictConfig attribute access costs microseconds, read every step.
    trainer = SimpleNamespace(**OmegaConf.to_container(cfg.trainer, resolve=True))
    schedule = OmegaConf.to_container(cfg.optimizer, resolve=True).get("schedule") or {}
    ckpt_dir = run_dir / "checkpoints"
    method.to(device)
    optimizers = method.configure_optimizers(cfg.optimizer)
    method.autocast = autocast_for(str(trainer.precision), device)
    method.grad_scaler = grad_scaler_for(str(trainer.precision), device)
    method.grad_clip = trainer.grad_clip

    start = _resume(method, optimizers, ckpt_dir, cfg, rank)
    if on_start is not None:
        on_start()
    if rank.distributed:
        distributed.broadcast_module(method)
        method.sync_gradients = distributed.average_gradients
    writer = SummaryWriter(str(run_dir)) if rank.is_main else _NoWriter()
    visual = VisualLogger(writer, method, data, trainer.image_examples, trainer.scatter_examples,
                          cfg.seed)
    checkpoint = _checkpointer(method, optimizers, cfg, ckpt_dir, trainer.keep_checkpoints, rank)
    bar = tqdm(total=trainer.max_steps, initial=start,
               disable=not (trainer.progress_bar and rank.is_main), dynamic_ncols=True,
               desc="train")
    window = MetricWindow()
    # A GAN with n_critic discriminator steps consumes n_critic real batches per train step.
    per_step = getattr(method, "batches_per_step", 1)
    batches = data.train.iter_batches(start * per_step)
    step, final = start, None
    with StopRequested() as stop:
        while step < trainer.max_steps:
            lr_factor = apply_schedule(optimizers, schedule, step, trainer.max_steps)
            method.diagnostics = (step + 1) % trainer.log_every == 0
            batch = _next_batches(batches, per_step)
            window.add(method.train_step(batch, step), examples_in(batch))
            step += 1
            bar.update(1)
            last = step == trainer.max_steps
            stopping = stop.signal is not None
            if rank.distributed:   # a signal that reached one process stops them all
                stopping = distributed.any_rank(stopping, device)
            if (step % trainer.log_every == 0 or last) and rank.is_main:
                metrics = method.summarize(window.flush())
                _stop_if_diverged(metrics, step, ckpt_dir)
                metrics["lr"] = lr_factor * _base_lr(optimizers)
                for key, value in metrics.items():
                    writer.add_scalar(key if "/" in key else f"train/{key}", value, step)
                shown = [k for k in ("loss", "d_loss", "g_loss") if k in metrics]
                bar.set_postfix({**{k: f"{metrics[k]:.4g}" for k in shown},
                                 "img_s": f"{metrics['images_per_second']:.0f}"})
            if (step % trainer.eval_every == 0 or last) and rank.is_main:
                # The last evaluation sees the whole test split: it is the run's final result.
                test = _test_metrics(method, data, None if last else trainer.eval_examples,
                                     cfg.seed)
                for key, value in test.items():
                    writer.add_scalar(f"test/{key}", value, step)
                visual.log(step)
                final = test if last else None
            if step % trainer.checkpoint_every == 0 or last or stopping:
                if not window.all_finite():
                    _stop_if_diverged({"loss": float("nan")}, step, ckpt_dir)
                checkpoint(step, periodic=step % trainer.checkpoint_every == 0)
            if stopping and not last:
                bar.close()
                writer.close()
                # A rank stopped by another rank's signal reports SIGTERM.
                raise RunStopped(stop.signal or STOP_SIGNALS[0], step, ckpt_dir / "last.pt", stop)
    bar.close()
    if not rank.is_main:
        return {}
    if final is None:  # resumed from a checkpoint of the last step: nothing was trained
        final = _test_metrics(method, data, None, cfg.seed)
    visual.log_embedding(step)
    log_hparams(writer, hparams, final)
    writer.close()
    return final


def _test_metrics(method, data, max_examples: int | None, seed: int) -> dict[str, float]:
    return {**evaluate(method, data.test, max_examples, seed),
            **evaluate_samples(method, data, seed)}


def _next_batches(batches, count: int):
    """The next `count` batches as one: exact resume only needs the step count."""
    if count == 1:
        return next(batches)
    return concatenated([next(batches) for _ in range(count)])


def _base_lr(optimizers) -> float:
    first = next(iter(optimizers.values()))
    return first.param_groups[0].get("initial_lr", first.param_groups[0]["lr"])


def _stop_if_diverged(metrics: dict[str, float], step: int, ckpt_dir: Path) -> None:
    bad = first_non_finite(metrics)
    if bad is None:
        return
    kept = ckpt_dir / "last.pt"
    where = f"the last good checkpoint {kept} is kept" if kept.exists() else \
        "no checkpoint had been written yet"
    raise TrainingDiverged(f"Training diverged by step {step} ({bad}); {where}; lower "
                           "optimizer.lr or set trainer.grad_clip, then resume or train again.")


def _resume(method, optimizers, ckpt_dir: Path, cfg, rank: distributed.Rank) -> int:
    """Restore from the run's own last.pt (a requeued job) or from `resume=PATH`; returns step.

    Each process of a data-parallel run restores its own RNG streams when the checkpoint holds
    them for the same number of processes.
    """
    own = ckpt_dir / "last.pt"
    path = own if own.exists() else (resume_path(cfg.resume) if cfg.resume else None)
    if path is None:
        return 0
    state = load_checkpoint(path)
    _refuse_other_choices(state, cfg, path)
    try:
        method.load_state_dict(state["modules"]["method"])
        for name, optimizer_state in state["optimizers"].items():
            optimizers[name].load_state_dict(optimizer_state)
    except (RuntimeError, KeyError, AttributeError, ValueError) as error:
        raise GentoolError(f"{path} does not fit this model (it was trained with another model or "
                           "data configuration); resume with the same model= and dataset= options "
                           "it was trained with.") from error
    if method.grad_scaler is not None and state.get("grad_scaler"):
        method.grad_scaler.load_state_dict(state["grad_scaler"])
    per_rank = state.get("rng_per_rank") or []
    restore_rng_state(per_rank[rank.rank] if len(per_rank) == rank.world_size and
                      rank.distributed else state["rng"])
    log.info("Resumed from %s at step %d", path, state["step"])
    return int(state["step"])


def _refuse_other_choices(state: dict[str, Any], cfg, path: Path) -> None:
    """A checkpoint continues the run it was trained in: the same model and data set by name
    (weights of the same shape would load, and silently train on another data set)."""
    stored = state.get("config") or {}
    trained = {group: str((stored.get(group) or {}).get("name")) for group in ("model", "dataset")}
    asked = {group: str(cfg[group].name) for group in ("model", "dataset")}
    if trained != asked:
        was = " ".join(f"{k}={v}" for k, v in trained.items())
        now = " ".join(f"{k}={v}" for k, v in asked.items())
        raise GentoolError(f"{path} does not fit this model: it was trained with {was}, not "
                           f"{now}; resume with the options it was trained with (or train a new "
                           "run in another directory).")


def resume_path(resume: str) -> Path:
    """The checkpoint that `resume=` names: a checkpoint file, or a run directory (its
    checkpoints/last.pt); `~` is the home folder."""
    path = Path(resume).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise GentoolError(f"resume={resume}: there is no checkpoint at {path}; pass a checkpoint "
                           "file or the directory of a train run, or drop resume=.")
    return path


def _checkpointer(method, optimizers, cfg, ckpt_dir: Path, keep: int, rank: distributed.Rank):
    config = OmegaConf.to_container(cfg, resolve=True)

    def write(step: int, periodic: bool) -> None:
        """Called on every process (they gather their RNG states); rank 0 writes."""
        rng_per_rank = None
        if rank.distributed:
            rng_per_rank = [None] * rank.world_size
            torch.distributed.all_gather_object(rng_per_rank, capture_rng_state())
        if not rank.is_main:
            return
        payload: dict[str, Any] = {
            "step": step,
            "config": config,
            "modules": {"method": method.state_dict()},
            "optimizers": {k: v.state_dict() for k, v in optimizers.items()},
            "grad_scaler": method.grad_scaler.state_dict() if method.grad_scaler else None,
            "rng": capture_rng_state(),
        }
        if rng_per_rank is not None:
            payload["rng_per_rank"] = rng_per_rank
        save_checkpoint(ckpt_dir / "last.pt", payload)
        if periodic and keep > 0:
            save_checkpoint(ckpt_dir / f"step_{step}.pt", payload)
            for old in sorted(ckpt_dir.glob("step_*.pt"),
                              key=lambda p: int(p.stem.split("_")[1]))[:-keep]:
                old.unlink()

    return write
