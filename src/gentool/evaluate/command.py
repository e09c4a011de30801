"""`gentool eval`: measure a trained model with every metric that applies to it.

The model is rebuilt from its checkpoint; the suites that apply are picked from its capabilities
(DESIGN.md section 3). The results are printed as a table, merged into the run's metrics.json as
`eval/<key>` and logged to the run's TensorBoard at the checkpoint's step.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from gentool.engine.checkpoint import CHECKPOINTS_FOLDER
from gentool.engine.files import atomic_write
from gentool.engine.run_log import start_run_log
from gentool.engine.run_metrics import write_metrics
from gentool.engine.visuals import check_scale, save_png, upscale
from gentool.errors import GentoolError
from gentool.evaluate.context import EvalContext
from gentool.evaluate.suites import SUITES, Row, chosen_suites
from gentool.evaluate.table import format_table
from gentool.options import check_schema
from gentool.rejection import check_rate, rejection_rate
from gentool.trained import start_from_checkpoint

log = logging.getLogger("gentool")


def run_eval(cfg: DictConfig) -> dict[str, float]:
    trained = start_from_checkpoint(cfg, "eval", check=lambda checkpoint: _check_sizes(cfg))
    train_cfg, step = trained.train_cfg, trained.step
    # The check `gentool sample` makes: rejection= on a model without a discriminator is refused
    # before anything runs, whichever suites are chosen (only `samples` would read it).
    rejection_rate(trained.method, cfg.rejection)
    ctx = EvalContext(trained.method, train_cfg.dataset, cfg, trained.device)
    suites = chosen_suites(ctx, cfg.metrics, train_cfg.model.name)
    run_dir = run_dir_of(trained.checkpoint)
    start_run_log(run_dir / "eval" / "eval.log")   # the log joins the results, in the run
    rows = evaluate(ctx, suites)
    title = f"{train_cfg.model.name} on {train_cfg.dataset.name}, step {step} " \
        f"({trained.checkpoint})"
    print(format_table(rows, title, ctx.sampler_note))
    metrics = {f"eval/{k}": v for row in rows for k, v in row.metrics().items()}
    write_results(run_dir, metrics, ctx.figures, step, cfg.scale)
    return metrics


def evaluate(ctx: EvalContext, names) -> list[Row]:
    """Run the suites `names` (chosen_suites' list) on ctx's method; their rows, in that order."""
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        rows += SUITES[name].run(ctx)
        log.info("%s: %.1f s", name, time.perf_counter() - started)
    return rows


def run_dir_of(checkpoint: Path) -> Path:
    """<run>/checkpoints/last.pt -> <run>; a checkpoint elsewhere -> its own folder."""
    folder = checkpoint.expanduser().resolve().parent
    return folder.parent if folder.name == CHECKPOINTS_FOLDER else folder


def write_results(run_dir: Path, metrics: dict[str, float], figures: dict, step: int,
                  scale="auto") -> None:
    """Merge into <run>/metrics.json (keeping training's keys), add TensorBoard scalars and the
    figures, and save the figures as PNGs under <run>/eval/, enlarged by `scale`
    (visuals.upscale; TensorBoard keeps them at their drawn size)."""
    path = write_metrics(run_dir, metrics, merge=True)
    with SummaryWriter(log_dir=str(run_dir)) as writer:
        for key, value in metrics.items():
            writer.add_scalar(key, value, step)
        for name, image in figures.items():
            writer.add_image(f"eval/{name}", image, step)
    for name, image in figures.items():
        atomic_write(run_dir / "eval" / f"{name}.png",
                     lambda f, image=upscale(image, scale): save_png(image, f))
    log.info("Metrics written to %s", path)


def _check_sizes(cfg: DictConfig) -> None:
    check_scale(cfg.scale)
    for key in ("n_samples", "batch_size", "iwae_k", "probe_examples", "classifier_steps",
                "max_pairs", "neighbours"):
        if int(cfg[key]) < 1:
            raise GentoolError(f"{key}={cfg[key]} must be at least 1.")
    if int(cfg.naive_mc.k_max) < 1 or int(cfg.naive_mc.examples) < 1:
        raise GentoolError("naive_mc.k_max and naive_mc.examples must be at least 1.")
    if cfg.rejection is not None:   # the range `gentool sample` checks, before any loading
        check_rate(cfg.rejection, "rejection")
    check_schema(cfg)   # the ranges EvalConfig declares (likelihood_examples >= 1 or null)
