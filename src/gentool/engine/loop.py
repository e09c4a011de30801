"""The generic training loop. It never knows which objective it trains (DESIGN.md section 3).

Progress is counted in optimizer steps: checkpoint `step` = number of completed train steps, the
batch of step s is a pure function of (seed, s), the learning rate a pure function of s, and the
RNG states are saved with the weights, so a resumed run ends with the same weights as an
uninterrupted one (on CPU, deterministic settings).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from gentool.data.batching import examples_in
from gentool.engine.checkpoint import (FinetuneCheckpoint, capture_rng_state, checkpoint_of,
                                       load_checkpoint, load_into, restore_rng_state,
                                       run_checkpoint, save_checkpoint)
from gentool.engine import distributed, metering
from gentool.engine.device import autocast_for, grad_scaler_for
from gentool.engine.metering import MetricWindow, evaluate, evaluate_samples, first_non_finite
from gentool.engine.monitor import Monitor
from gentool.engine.schedule import apply_schedule
from gentool.engine.step import StepContext
from gentool.engine.stop import STOP_SIGNALS, RunStopped, StopRequested
from gentool.engine.tensorboard import VisualLogger, log_hparams
from gentool.errors import GentoolError, TrainingDiverged

log = logging.getLogger("gentool")


@dataclass
class FitResult:
    """What a training run ends with. `test` and `validation` are the final evaluation's metrics
    (unprefixed keys; `validation` empty without a validation split), of the best checkpoint's
    weights when the run monitors a metric and has a best.pt, else of the last weights; `step`
    is the step training ended at (below max_steps when it stopped early)."""

    test: dict[str, float]
    validation: dict[str, float] = field(default_factory=dict)
    step: int = 0
    best_step: int | None = None     # the step of checkpoints/best.pt (None: no monitor or best)
    best: float | None = None        # its value of the monitored key
    stopped_early: bool = False


class _NoWriter:
    """What processes other than rank 0 log to: nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def fit(method, data, trainer, run_dir: Path, device: torch.device, *, optimizer, seed: int,
        resume: str | None, run_config, hparams: dict[str, Any],
        rank: distributed.Rank = distributed.Rank(),
        on_start: Callable[[], None] | None = None) -> FitResult:
    """Train `method` on `data` for `trainer.max_steps` steps (fewer when early stopping ends the
    run); returns the final evaluation (FitResult).

    `trainer` is the run's trainer config (steps, intervals, precision, schedule: its name checked
    by the caller with engine.schedule.check_schedule, as gentool train does before loading data),
    `optimizer` the optimizer config the method's `configure_optimizers` reads, `seed` the
    evaluation seed, `resume` a checkpoint or run directory to start from. `run_config` (the
    whole run config) is stored in checkpoints, and a checkpoint of another model or data set is
    refused against it.
    `hparams` (the run's distinguishing choices) go to TensorBoard's HParams tab with the final
    metrics. In a data-parallel run (`rank`), only rank 0 evaluates, logs and writes checkpoints;
    the others return no metrics. `on_start` is called once the checkpoint to resume from (if
    any) has been accepted, before anything is written to `run_dir`. A stop signal ends the run
    with `RunStopped` after a checkpoint of the current step.
    """
    # Plain Python values: DictConfig attribute access costs microseconds, read every step.
    config = SimpleNamespace(**OmegaConf.to_container(trainer, resolve=True))
    last_pt = run_checkpoint(run_dir)
    ckpt_dir = last_pt.parent
    method.to(device)
    optimizers = method.configure_optimizers(optimizer)
    ctx = StepContext(optimizers, autocast=autocast_for(str(config.precision), device),
                      grad_scaler=grad_scaler_for(str(config.precision), device),
                      grad_clip=config.grad_clip)
    monitor = Monitor(config.monitor, config.monitor_mode, config.early_stopping,
                      data.validation is not None)
    start = _resume(method, ctx, last_pt, resume, run_config, rank, monitor)
    if monitor.active:   # the monitored key is known before training: one batch's evaluation
        first = data.test.batch_size
        monitor.check_reported(_evaluation(method, data, seed, examples=first,
                                           validation_examples=first, measure=metering.evaluate))
    if on_start is not None:
        on_start()
    if rank.distributed:
        distributed.broadcast_module(method)
        ctx.sync_gradients = distributed.average_gradients
    writer = SummaryWriter(str(run_dir)) if rank.is_main else _NoWriter()
    visual = VisualLogger(writer, method, data, config.image_examples, config.scatter_examples,
                          seed)
    checkpoint = _checkpointer(method, ctx, run_config, last_pt, config.keep_checkpoints, rank,
                               monitor)
    bar = tqdm(total=config.max_steps, initial=start,
               disable=not (config.progress_bar and rank.is_main), dynamic_ncols=True,
               desc="train")
    batches = _step_batches(data.train, start, method.batches_per_step)
    window = MetricWindow()
    step, final, stopped_early = start, None, False
    with StopRequested() as stop:
        while step < config.max_steps and not monitor.should_stop:
            # -- one train step: the method's forward, backward and optimizer steps
            lr_factor = apply_schedule(optimizers, config.schedule, step, config.max_steps)
            ctx.step, ctx.diagnostics = step, (step + 1) % config.log_every == 0
            batch = next(batches)
            window.add(method.train_step(batch, ctx), _examples(batch))
            step += 1
            bar.update(1)
            last = step == config.max_steps
            stopping = _stop_agreed(stop, rank, device)

            # -- log: every rank reads its window and stops on a non-finite metric
            if step % config.log_every == 0 or last:
                metrics = method.summarize(window.flush())
                _stop_if_diverged(first_non_finite(metrics), step, last_pt, rank, device)
                metrics["lr"] = lr_factor * _base_lr(optimizers)
                for key, value in metrics.items():
                    writer.add_scalar(key if "/" in key else f"train/{key}", value, step)
                bar.set_postfix(_progress(metrics, method.progress_keys))

            # -- evaluate: the last evaluation sees the whole test split (the run's result); the
            #    validation split is evaluated whole every time. An improvement of the monitored
            #    metric writes best.pt; patience run out ends the run on every rank.
            evaluating = step % config.eval_every == 0 or last
            if evaluating and rank.is_main:
                reported = _evaluation(method, data, seed,
                                       examples=None if last else config.eval_examples)
                for key, value in reported.items():
                    writer.add_scalar(key, value, step)
                visual.log(step)
                final = reported if last else None
                if monitor.update(reported, step):
                    checkpoint(step, periodic=False, best=True)
            if evaluating and monitor.patience is not None:
                stopped_early = _agreed(monitor.should_stop and rank.is_main, rank, device) \
                    and not last
                if stopped_early:
                    log.info("Early stopping at step %d: %s has not improved on %.6g (step %d) "
                             "for %d evaluations", step, monitor.key, monitor.best,
                             monitor.best_step, monitor.since_best)

            # -- checkpoint: never of weights a non-finite step has touched
            if step % config.checkpoint_every == 0 or last or stopping or stopped_early:
                _stop_if_diverged(window.first_non_finite(), step, last_pt, rank, device)
                checkpoint(step, periodic=step % config.checkpoint_every == 0)
            if stopped_early:
                break

            # -- stop: a signal ends the run once its checkpoint is written
            if stopping and not last:
                bar.close()
                writer.close()
                # A rank stopped by another rank's signal reports SIGTERM.
                raise RunStopped(stop.signal or STOP_SIGNALS[0], step, last_pt, stop)
    bar.close()
    if not rank.is_main:
        return FitResult({}, step=step)
    stopped_early = stopped_early or (monitor.should_stop and step < config.max_steps)
    best = ckpt_dir / "best.pt"
    if monitor.active and monitor.best_step not in (None, step) and best.is_file():
        # Monitoring selects a model: the run's result is that of its best checkpoint.
        load_into(method, load_checkpoint(best), best, fix="train again in a new run directory")
        final = None
        log.info("Final metrics are those of %s (step %d, %s=%.6g)", best, monitor.best_step,
                 monitor.key, monitor.best)
    if final is None:  # resumed at the end, stopped early, or the best weights loaded
        final = _evaluation(method, data, seed, examples=None)
    test = {k[len("test/"):]: v for k, v in final.items() if k.startswith("test/")}
    visual.log_embedding(step)
    log_hparams(writer, hparams, test)
    writer.close()
    return FitResult(test, {k[len("val/"):]: v for k, v in final.items() if k.startswith("val/")},
                     step, monitor.best_step, monitor.best, stopped_early)


def _step_batches(split, start: int, per_step: int):
    """The batches of steps start, start + 1, ...: one batch each, or a list of `per_step`
    batches for a method that consumes several per step. The batch order is a function of the
    batch count alone, so exact resume only needs the step count."""
    batches = split.iter_batches(start * per_step)
    if per_step == 1:
        yield from batches
        return
    while True:
        yield [next(batches) for _ in range(per_step)]


def _examples(batch) -> int:
    """Examples in a step's batch (or list of batches), for the throughput."""
    return sum(map(examples_in, batch)) if isinstance(batch, list) else examples_in(batch)


def _stop_agreed(stop: StopRequested, rank: distributed.Rank, device: torch.device) -> bool:
    """Whether the run stops after this step: a signal that reached one process stops them all."""
    return _agreed(stop.signal is not None, rank, device)


def _agreed(flag: bool, rank: distributed.Rank, device: torch.device) -> bool:
    """`flag` on every process when one of them has it (a collective in a data-parallel run)."""
    return distributed.any_rank(flag, device) if rank.distributed else flag


def _progress(metrics: dict[str, float], keys) -> dict[str, str]:
    """What the progress bar shows: the method's `progress_keys` it reported, and throughput."""
    return {**{k: f"{metrics[k]:.4g}" for k in keys if k in metrics},
            "img_s": f"{metrics['images_per_second']:.0f}"}


def _evaluation(method, data, seed: int, examples: int | None,
                validation_examples: int | None = None, measure=None) -> dict[str, float]:
    """What an evaluation reports: `test/<metric>` over the first `examples` test examples (all:
    None) with the data set's sample metrics, and `val/<metric>` over the first
    `validation_examples` of the validation split (all: None) when there is one. `measure`
    replaces this module's `evaluate` (the key check before training is no evaluation)."""
    measure = measure or evaluate
    reported = {f"test/{k}": v for k, v in {**measure(method, data.test, examples, seed),
                                           **evaluate_samples(method, data, seed)}.items()}
    if data.validation is not None:
        reported.update({f"val/{k}": v for k, v in
                         measure(method, data.validation, validation_examples, seed).items()})
    return reported


def _base_lr(optimizers) -> float:
    first = next(iter(optimizers.values()))
    return first.param_groups[0].get("initial_lr", first.param_groups[0]["lr"])


def _stop_if_diverged(bad: str | None, step: int, kept: Path, rank: distributed.Rank,
                      device: torch.device) -> None:
    """Raise TrainingDiverged on every process when one of them saw a non-finite value `bad`
    ("loss=nan"), so none is left waiting in the next collective; `kept` is the run's last.pt."""
    diverged = bad is not None
    if rank.distributed:
        diverged = distributed.any_rank(diverged, device)
    if not diverged:
        return
    where = f"the last good checkpoint {kept} is kept" if kept.exists() else \
        "no checkpoint had been written yet"
    raise TrainingDiverged(f"training diverged by step {step} ({bad or 'on another process'}); "
                           f"{where}; lower optimizer.lr or set trainer.grad_clip, then resume "
                           "or train again.")


def _resume(method, ctx: StepContext, own: Path, resume: str | None, run_config,
            rank: distributed.Rank, monitor: Monitor) -> int:
    """Restore from `own`, the run's last.pt (a requeued job), or from `resume=PATH`; returns
    the step. The run's own last.pt wins over `resume=`, so that a requeued job, which keeps
    its resume=, continues its own run. A resume= so passed over is named in a warning, unless it
    is the resume= this run started with (its checkpoint's config says), which is an INFO line.

    The monitor's record (best value, its step, evaluations since) comes back with the weights
    when the checkpoint monitored the same key the same way.

    Each process of a data-parallel run restores its own RNG streams when the checkpoint holds
    them for the same number of processes.
    """
    if own.exists():
        path = own
    elif resume:
        path = checkpoint_of(resume, "resume", optional=True)
    else:
        return 0
    try:
        state = load_checkpoint(path)
    except FinetuneCheckpoint as error:
        if path != own:
            raise
        run_dir = own.parent.parent
        raise GentoolError(f"hydra.run.dir={run_dir} is a finetune run's directory; choose "
                           "another hydra.run.dir=.") from error
    if path == own and resume and not _names_checkpoint(resume, own) and rank.is_main:
        started = (state.get("config") or {}).get("resume")
        if started and _same_path(str(started), resume):
            # The run's own continuation commands (a requeued job, the command printed after
            # SIGTERM or a full disk) repeat the resume= it started with.
            log.info("continuing %s at step %d; resume=%s started this run and is not read "
                     "again", own.parent.parent, state["step"], resume)
        else:
            log.warning("resume=%s is not used: %s already holds its own checkpoints/last.pt "
                        "(step %d), which this run continues; to start from %s, choose a new "
                        "hydra.run.dir=", resume, own.parent.parent, state["step"], resume)
    _refuse_other_choices(state, run_config, path)
    load_into(method, state, path, optimizers=ctx.optimizers,
              fix="resume with the same model= and dataset= options it was trained with")
    if ctx.grad_scaler is not None and state.get("grad_scaler"):
        ctx.grad_scaler.load_state_dict(state["grad_scaler"])
    per_rank = state.get("rng_per_rank") or []
    restore_rng_state(per_rank[rank.rank] if len(per_rank) == rank.world_size and
                      rank.distributed else state["rng"])
    if monitor.active and not monitor.load_state_dict(state.get("monitor")):
        log.info("%s monitored no %s (%s); its record starts afresh", path, monitor.key,
                 monitor.mode)
    log.info("Resumed from %s at step %d", path, state["step"])
    return int(state["step"])


def _names_checkpoint(given: str, checkpoint: Path) -> bool:
    """Whether `given` (a resume= path) names `checkpoint`: the file, or its run directory."""
    path = Path(given).expanduser().resolve()
    return checkpoint.resolve() in (path, run_checkpoint(path))


def _same_path(first: str, second: str) -> bool:
    """Whether two resume= paths name the same file or folder once `~` and links are resolved."""
    return Path(first).expanduser().resolve() == Path(second).expanduser().resolve()


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


def _checkpointer(method, ctx: StepContext, run_config, last_pt: Path, keep: int,
                  rank: distributed.Rank, monitor: Monitor):
    """The checkpoint writer: `last_pt` (the run's last.pt), best.pt and step_*.pt beside it."""
    ckpt_dir = last_pt.parent
    config = OmegaConf.to_container(run_config, resolve=True)

    def write(step: int, periodic: bool, best: bool = False) -> None:
        """Called on every process (they gather their RNG states); rank 0 writes. `best`: only
        checkpoints/best.pt, called by rank 0 alone (it evaluates), with its own RNG state."""
        rng_per_rank = None
        if rank.distributed and not best:
            rng_per_rank = [None] * rank.world_size
            torch.distributed.all_gather_object(rng_per_rank, capture_rng_state())
        if not rank.is_main:
            return
        payload: dict[str, Any] = {
            "step": step,
            "config": config,
            "modules": {"method": method.state_dict()},
            "optimizers": {k: v.state_dict() for k, v in ctx.optimizers.items()},
            "grad_scaler": ctx.grad_scaler.state_dict() if ctx.grad_scaler else None,
            "rng": capture_rng_state(),
            "monitor": monitor.state_dict(),
        }
        if rng_per_rank is not None:
            payload["rng_per_rank"] = rng_per_rank
        if best:
            save_checkpoint(ckpt_dir / "best.pt", payload)
            return
        save_checkpoint(last_pt, payload)
        if periodic and keep > 0:
            save_checkpoint(ckpt_dir / f"step_{step}.pt", payload)
            for old in sorted(ckpt_dir.glob("step_*.pt"),
                              key=lambda p: int(p.stem.split("_")[1]))[:-keep]:
                old.unlink()

    return write
