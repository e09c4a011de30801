"""`gentool train`: build data and method from the config, fit, record the final metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import torch

from gentool.config import check_config
from gentool.data import build_data
from gentool.engine import distributed
from gentool.engine.device import (check_precision, describe_device, resolve_device,
                                   seed_everything, set_determinism)
from gentool.engine.checkpoint import resume_advice, run_checkpoint
from gentool.engine.files import (NO_SPACE, NOT_WRITABLE, os_error_in,
                                  quiet_refused_writes_in_threads, write_failed)
from gentool.engine.loop import FitResult, fit
from gentool.engine.run_directory import RunDirectory
from gentool.engine.run_metrics import write_metrics
from gentool.engine.schedule import check_schedule
from gentool.errors import GentoolError
from gentool.methods import build_method, check_method

log = logging.getLogger("gentool")

# The metric a sweeper (Optuna, ...) minimises, returned by run_train when the method reports it.
OBJECTIVE = "loss"


def run_train(cfg: DictConfig, output_dir: str | Path | RunDirectory) -> float | None:
    """Train in `output_dir` (resuming from its checkpoints/last.pt when there is one).

    The directory is held by this run alone (see engine/run_directory.py); a start refused before
    training (bad data, a checkpoint of another model) leaves it as it was.
    """
    run = output_dir if isinstance(output_dir, RunDirectory) else RunDirectory(output_dir)
    rank = distributed.init_distributed()
    agree = (lambda refused: distributed.any_rank(refused, distributed.collective_device())) \
        if rank.distributed else None
    with run.held(rank.is_main, agree):
        return _train(cfg, run, rank)


def _train(cfg: DictConfig, run: RunDirectory, rank: distributed.Rank) -> float | None:
    run_dir = run.path
    # Settings that cannot work are refused before any data is loaded or anything is written.
    check_config(cfg)
    check_method(cfg, config_choices(), task_overrides())
    check_schedule(cfg.trainer.schedule)
    check_precision(str(cfg.trainer.precision))
    if not rank.is_main:   # only rank 0 logs, writes and prints
        log.setLevel(logging.WARNING)
    device = distributed.device_for(rank, resolve_device(cfg.device))
    log.info("Device: %s", describe_device(device))
    if rank.distributed:
        log.info("Data-parallel over %d processes: %d examples each of every global batch of %d",
                 rank.world_size, distributed.per_rank_batch_size(cfg.trainer.batch_size, rank),
                 cfg.trainer.batch_size)
    set_determinism(cfg.deterministic)
    seed_everything(cfg.seed)
    data = build_data(cfg.dataset, cfg.data_dir, device, cfg.trainer.batch_size, cfg.seed,
                      shard=(rank.rank, rank.world_size))
    method = build_method(cfg)
    if rank.distributed:
        # Same initial weights (rank 0's are broadcast); a stream of noise of its own per rank.
        torch.manual_seed(cfg.seed + 1_000_003 * rank.rank)
    log.info("Model %s: %s parameters; data %s %s, %d train / %d test examples",
             cfg.model.name, parameter_count(sum(p.numel() for p in method.parameters())),
             data.name, list(data.shape), data.train.num_examples, data.test.num_examples)
    quiet_refused_writes_in_threads()
    try:
        final = fit(method, data, cfg.trainer, run_dir, device, optimizer=cfg.optimizer,
                    seed=cfg.seed, resume=cfg.resume, run_config=cfg, hparams=hparams_of(cfg, config_choices()),
                    rank=rank, on_start=run.start)
    except Exception as error:
        _raise_if_refused_write(error, run_dir)
        raise
    if not rank.is_main:
        return None
    write_metrics(run_dir, {**evaluation_kept(run_dir, final.step),
                            **record_of(final, cfg.trainer.monitor)},
                  kept="the final checkpoint is written", then=resume_advice(run_dir) + " to write it (the run resumes at its last step)")
    if final.stopped_early:
        log.info("Stopped early at step %d of %d", final.step, cfg.trainer.max_steps)
    which = "" if final.best_step is None else f" (checkpoints/best.pt, step {final.best_step})"
    log.info("Final test metrics%s: %s", which,
             ", ".join(f"{k}={v:.4g}" for k, v in final.test.items()))
    log.info("Run directory: %s", run_dir.resolve())
    return final.test.get(OBJECTIVE)


def parameter_count(count: int) -> str:
    """A parameter count to 3 significant figures in a unit that shows it: 512, 2.10k, 76.1k,
    1.12M, 25.0M, 3.00G (a small model in millions reads as 0.00M, as if empty). The unit is
    chosen after rounding, so 999,999 reads 1.00M rather than 1000k."""
    if count < 1_000:
        return str(count)
    rounded = float(f"{count:.3g}")
    for unit, scale in (("k", 1e3), ("M", 1e6), ("G", 1e9)):
        value = rounded / scale
        if value < 1_000:
            break
    decimals = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{decimals}f}{unit}"


def evaluation_kept(run_dir: Path, step: int) -> dict[str, Any]:
    """The `eval/` results that `gentool eval` merged into the run's metrics.json, when that file
    records the step the run ends at: a finished run started again ends on the same checkpoint,
    so they still describe it. A run trained further drops them, as they describe an older one."""
    path = Path(run_dir) / "metrics.json"
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):   # no file yet, or one the write replaces anyway
        return {}
    if not isinstance(record, dict) or record.get("step") != step:
        return {}
    return {k: v for k, v in record.items() if k.startswith("eval/")}


def record_of(final: FitResult, monitored: str | None) -> dict[str, Any]:
    """metrics.json of a run: the step it ended at, its final test/ and val/ metrics, and with a
    monitored metric the best checkpoint's step and value (`best_step`, `best/<key>`)."""
    record: dict[str, Any] = {"step": final.step,
                              **{f"test/{k}": v for k, v in final.test.items()},
                              **{f"val/{k}": v for k, v in final.validation.items()}}
    if monitored is not None:
        record.update({"best_step": final.best_step, f"best/{monitored}": final.best,
                       "stopped_early": final.stopped_early})
    return record


def _raise_if_refused_write(error: Exception, run_dir: Path) -> None:
    """A write the file system refused outside the checkpoint and metrics writes (TensorBoard's
    event files, its pictures) ends as one sentence too, saying which checkpoint is intact."""
    refused = None if isinstance(error, GentoolError) else os_error_in(error)
    if refused is None or refused.errno not in NO_SPACE + NOT_WRITABLE:
        return
    last = run_checkpoint(run_dir)
    kept = f"the last checkpoint {last} is intact" if last.exists() else \
        "no checkpoint had been written yet"
    raise write_failed(run_dir, refused, kept, resume_advice(run_dir)) from error


def config_choices() -> dict[str, str]:
    """The config group choices of the command line (loss=minimax -> {"loss": "minimax"}), as
    Hydra resolved them; empty when the config was composed outside a Hydra app."""
    if not HydraConfig.initialized():
        return {}
    return {group: choice for group, choice in HydraConfig.get().runtime.choices.items()
            if isinstance(choice, str)}


def task_overrides() -> list[str]:
    """The settings of the command line (model.data_shape=[3]), as Hydra received them; empty
    when the config was composed outside a Hydra app."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def hparams_of(cfg: DictConfig, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """The scalar settings that tell runs apart, flattened: model, loss, optimizer, a few more.
    `choices` (config_choices()) names the loss by the config a user typed."""
    flat = {"dataset": cfg.dataset.name, "seed": cfg.seed,
            "batch_size": cfg.trainer.batch_size, "max_steps": cfg.trainer.max_steps}
    for group in ("model", "loss", "optimizer"):
        flat.update(_flatten(OmegaConf.to_container(cfg[group], resolve=True), group))
    # The config's model name (conv_vae), not its class (VAE): several configs share a class.
    flat["model.class"], flat["model"] = flat["model"], cfg.model.name
    flat.pop("model.name", None)
    if choices and choices.get("loss"):
        flat["loss.class"], flat["loss"] = flat["loss"], choices["loss"]
    return flat


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("_partial_", "data_shape", "value_range"):
                continue
            name = prefix if key == "_target_" else f"{prefix}.{key}"
            out.update(_flatten(value.rsplit(".", 1)[-1] if key == "_target_" else value, name))
        return out
    return {prefix: node if isinstance(node, (int, float, str, bool)) else str(node)}
