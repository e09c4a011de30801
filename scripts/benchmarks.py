#!/usr/bin/env python
"""The model-comparison table of docs/benchmarks.md: train each model, `gentool eval` it, and keep
one result file per model.

AE, linear AE, PCA, VAE and the DCGAN of `experiment=dcgan_fashion_mnist` (at the preset's own
budget) on one data set (Fashion-MNIST by default, from Debian's dataset-fashion-mnist or
data_dir), every model through the real `run_train` and `run_eval` paths, PCA through the same
evaluation suites as a model with encode/decode. The stabilised DCGAN variants are measured over
3 seeds by scripts/gan_study.py (docs/gan_study.md, section 3), not here.

The table survives sessions. Each measured model writes one JSON file,
`<cells>/<dataset>/seed<k>/<model>.json`: its eval metrics (the `eval/` keys of metrics.json
without the prefix), the wall seconds of its training and evaluation, the machine, the torch
thread count, the commit and the train overrides. A model whose file exists is skipped (neither
retrained nor re-evaluated), so the same command continues where it stopped. Runs land in --runs
(one folder per model); a run folder whose training finished is reused, so an interrupted
evaluation does not retrain, and an interrupted training resumes from its last checkpoint.
The markdown section of --out (between this script's markers: the rest of the file is kept) is
rebuilt from the files after every model and at any time with --table-only: the metric table,
a wall-time table and the commands, with every model of the comparison as a row, those without
a file marked missing.

    .venv/bin/python scripts/benchmarks.py                       # measure what is missing
    .venv/bin/python scripts/benchmarks.py --table-only          # rebuild docs/benchmarks.md
    .venv/bin/python scripts/benchmarks.py --models vae ae --steps-scale 0.01 \\
        --cells /tmp/cells --runs /tmp/runs --out /tmp/b.md      # a quick check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from markdown_section import markers, write_section
from study_files import commit, machine, write_json

REPO = Path(__file__).resolve().parents[1]
CELLS = REPO / "docs" / "results" / "benchmarks"
BEGIN, END = markers("scripts/benchmarks.py")   # the section of --out this script owns
# In a run folder: the wall seconds of the training and of the evaluation done in it, the step
# that training resumed from and whether that evaluation trained the feature classifier. A later
# sitting that reuses the folder (its training or evaluation finished but its result file was not
# written, or was lost) does not redo that work, and gentool's own run files (metrics.json, the
# checkpoints) hold no wall times, so the result file takes them from here. A training that is
# interrupted records nothing: the sitting that finishes it records its own seconds only, with
# the step it resumed from, and the table labels that figure as the last sitting's.
WALL = "benchmarks_wall.json"

LATENT = 20
# name -> (label, train overrides). Every encoder has LATENT dimensions, like PCA. The DCGAN
# trains its preset as it is, at the preset's own budget (trainer.max_steps of the preset).
MODELS = {
    "ae": ("AE (MLP 784-400-20)", ["model=ae", f"model.latent_dim={LATENT}",
                                   "model.encoder.hidden=[400]", "model.decoder.hidden=[400]",
                                   "trainer.max_steps=10000"]),
    "ae_linear": ("linear AE", ["model=ae_linear", f"model.latent_dim={LATENT}",
                                "trainer.max_steps=10000"]),
    "pca": ("PCA", []),
    "vae": ("VAE (MLP 784-400-20, Bernoulli)", ["model=vae", f"model.latent_dim={LATENT}",
                                                "trainer.max_steps=10000"]),
    "dcgan": ("DCGAN (experiment=dcgan_fashion_mnist)", ["experiment=dcgan_fashion_mnist"]),
}
# Shown in the table; eval/<key> in metrics.json. None: the model cannot do it.
COLUMNS = [("test MSE/pixel", "mse", 4), ("IWAE NLL (nats)", "iwae_nll", 1),
           ("Fréchet dist.", "fd", 1), ("precision", "precision", 3), ("recall", "recall", 3),
           ("classes covered", "classes_covered", 0), ("class KL", "class_kl", 3),
           ("linear probe", "linear_probe", 3)]
FLOOR = [("real vs real", {"fd": "fd_real", "precision": "precision_real",
                           "recall": "recall_real", "classes_covered": "classes_covered_real",
                           "class_kl": "class_kl_real"}),
         ("raw pixels", {"linear_probe": "linear_probe_pixels"})]


# -- what each model trains and is evaluated with ---------------------------------------------

def train_overrides(name: str, args) -> list[str]:
    from gentool.overrides import merged_overrides

    overrides = [f"dataset={args.dataset}", f"seed={args.seed}", f"device={args.device}",
                 f"data_dir={args.data_dir}", "trainer.progress_bar=false", *MODELS[name][1]]
    if args.steps_scale != 1.0:
        scaled = max(2, int(max_steps(overrides) * args.steps_scale))
        # the scaled budget takes the place of the model's own trainer.max_steps= and the like
        overrides = merged_overrides(
            *overrides, f"trainer.max_steps={scaled}", f"trainer.eval_every={scaled}",
            f"trainer.checkpoint_every={scaled}", f"trainer.log_every={scaled}")
    return overrides


def max_steps(overrides: list[str]) -> int:
    """The training steps the overrides ask for: their trainer.max_steps, or where they set none
    (a preset's own budget) the composed config's."""
    given = [o for o in overrides if o.startswith("trainer.max_steps=")]
    if given:
        return int(given[-1].split("=", 1)[1])
    return int(compose("train", overrides).trainer.max_steps)


def eval_overrides(args) -> list[str]:
    return [f"device={args.device}", f"data_dir={args.data_dir}", f"seed={args.seed}",
            f"likelihood_examples={args.likelihood_examples}", *args.eval]


def compose(config: str, overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_module

    from gentool.config import setup

    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        return hydra_compose(config, overrides=overrides)


# -- measuring one model ----------------------------------------------------------------------

def cell_path(cells, dataset: str, seed: int, name: str) -> Path:
    return Path(cells) / dataset / f"seed{seed}" / f"{name}.json"


def measure_cell(name: str, args) -> bool:
    """Measure one model and write its result file, unless the file exists; whether it ran."""
    path = cell_path(args.cells, args.dataset, args.seed, name)
    if path.is_file():
        print(f"{name}: {path} exists, skipped", flush=True)
        return False
    code = commit()   # before measuring: the code may change while a long measurement runs
    measured = measure_pca(args) if name == "pca" else measure(name, args)
    write_json(path, cell_record(name, args, measured, code))
    return True


def cell_record(name: str, args, measured: dict, code: str | None) -> dict:
    """A model's result file: what `measure` found, where and how it was measured, and `code`,
    the commit of the code that measured it (study_files.commit)."""
    import torch

    from gentool.engine.device import resolve_device
    from gentool.metrics.classifier import VERSION

    device = resolve_device(args.device)
    overrides = ([f"dataset={args.dataset}", f"seed={args.seed}"] if name == "pca"
                 else train_overrides(name, args))
    return {"model": name, "label": MODELS[name][0], "dataset": args.dataset, "seed": args.seed,
            **measured, "machine": machine(),
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "classifier_version": VERSION, "commit": code, "overrides": overrides,
            "eval_overrides": eval_overrides(args),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}


def measure(name: str, args) -> dict:
    """Train (unless the run folder holds a finished run) and evaluate (unless its metrics.json
    has eval/ metrics) one model: its eval metrics and the wall seconds of both steps."""
    from gentool.engine.checkpoint import run_checkpoint
    from gentool.evaluate import run_eval
    from gentool.train import run_train

    run = Path(args.runs) / name
    if not (run / "metrics.json").is_file():   # run_train writes it once training has finished
        resumed = checkpoint_step(run)
        timed(run, "train_seconds",
              lambda: run_train(compose("train", train_overrides(name, args)), run))
        record_wall(run, "resumed_from_step", resumed)
    if not eval_metrics(run):
        checkpoint = f"checkpoint={run_checkpoint(run)}"
        _, trained = timed(run, "eval_seconds", lambda: training_classifier(
            args.data_dir, lambda: run_eval(compose("eval", [*eval_overrides(args), checkpoint]))))
        record_wall(run, "trained_classifier", trained)
    wall = wall_times(run)
    return {"metrics": eval_metrics(run), "train_seconds": wall.get("train_seconds"),
            "eval_seconds": wall.get("eval_seconds"),
            "resumed_from_step": wall.get("resumed_from_step"),
            "trained_classifier": wall.get("trained_classifier", False)}


def training_classifier(data_dir, evaluation):
    """Run `evaluation`: its result, and whether it trained a feature classifier. An evaluation
    that finds no classifier cached under data_dir trains one and caches it there, so a cache
    that gained a file during the evaluation means it trained one."""
    cached = cached_classifiers(data_dir)
    result = evaluation()
    return result, bool(cached_classifiers(data_dir) - cached)


def cached_classifiers(data_dir) -> set[str]:
    """The file names of the feature classifiers cached under data_dir."""
    from gentool.metrics.classifier import cache_dir

    return {p.name for p in cache_dir(data_dir).glob("*.pt")}


def eval_metrics(run: Path) -> dict:
    """The eval/ metrics of a run's metrics.json, without the prefix (empty: not evaluated)."""
    record = json.loads((run / "metrics.json").read_text())
    return {key[5:]: value for key, value in record.items() if key.startswith("eval/")}


def checkpoint_step(run: Path) -> int:
    """The step a training resumes from: its last checkpoint's, 0 when it has none."""
    from gentool.engine.checkpoint import load_checkpoint, run_checkpoint

    last = run_checkpoint(run)
    if not last.is_file():
        return 0
    return int(load_checkpoint(last)["step"])


def timed(run: Path, key: str, work):
    """Do `work`, record its wall seconds in the run folder's WALL file under `key`, and return
    what `work` returned."""
    started = time.perf_counter()
    result = work()
    seconds = round(time.perf_counter() - started, 1)
    record_wall(run, key, seconds)
    print(f"{run.name}: {key} {seconds:.0f}", flush=True)
    return result


def wall_times(run: Path) -> dict:
    path = run / WALL
    return json.loads(path.read_text()) if path.is_file() else {}


def record_wall(run: Path, key: str, value) -> None:
    write_json(run / WALL, {**wall_times(run), key: value})


def measure_pca(args) -> dict:
    """PCA with LATENT components through the same suites a trained autoencoder gets; fitting it
    counts as its training."""
    import torch

    from gentool.engine.device import resolve_device, seed_everything
    from gentool.evaluate.command import evaluate
    from gentool.evaluate.context import EvalContext
    from gentool.metrics.pca import PCA

    cfg = compose("eval", eval_overrides(args))
    dataset_cfg = compose("train", [f"dataset={args.dataset}"]).dataset
    seed_everything(args.seed)
    ctx = EvalContext(None, dataset_cfg, cfg, resolve_device(args.device))
    started = time.perf_counter()
    ctx.method = ScaledPCA(PCA(ctx.unit(ctx.train[0]), LATENT), *ctx.data.value_range)
    fitted = time.perf_counter()
    with torch.no_grad():
        rows, trained = training_classifier(args.data_dir, lambda: evaluate(
            ctx, ["reconstruction", "samples", "representation"]))
    return {"metrics": {k: v for row in rows for k, v in row.metrics().items()},
            "train_seconds": round(fitted - started, 1),
            "eval_seconds": round(time.perf_counter() - fitted, 1), "resumed_from_step": 0,
            "trained_classifier": trained}


class ScaledPCA:
    """PCA on [0, 1] pixels presented in the data set's units, as the evaluation expects."""

    def __init__(self, pca, lo: float, hi: float):
        self.pca, self.lo, self.hi, self.latent_dim = pca, lo, hi, pca.latent_dim

    def encode(self, x):
        return self.pca.encode((x - self.lo) / (self.hi - self.lo)).float()

    def decode(self, codes):
        return self.pca.decode(codes) * (self.hi - self.lo) + self.lo

    def reconstruct(self, x):
        return self.decode(self.encode(x))


# -- the section of --out ---------------------------------------------------------------------

def read_cells(args) -> dict[str, dict | None]:
    """Every model of the comparison -> its result file's record (None: not measured yet)."""
    found = {}
    for name in MODELS:
        path = cell_path(args.cells, args.dataset, args.seed, name)
        found[name] = json.loads(path.read_text()) if path.is_file() else None
    return found


def figure(metrics: dict, key: str, digits: int) -> str:
    value = metrics.get(key)
    return "—" if value is None else f"{value:.{digits}f}"


def row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def metrics_table(results: dict[str, dict | None]) -> str:
    lines = [row("model", [label for label, _, _ in COLUMNS]), "|" + "---|" * (len(COLUMNS) + 1)]
    for name, record in results.items():
        cells = (["missing"] * len(COLUMNS) if record is None else
                 [figure(record["metrics"], key, digits) for _, key, digits in COLUMNS])
        lines.append(row(MODELS[name][0], cells))
    source = {}   # a floor is the same for every model that reports it
    for record in results.values():
        source.update(record["metrics"] if record else {})
    for label, keys in FLOOR:
        lines.append(row(f"*{label}*", [figure(source, keys[key], digits) if key in keys else ""
                                        for _, key, digits in COLUMNS]))
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    """'7 min 21 s' ('45 s' under a minute); '—' when not recorded."""
    if seconds is None:
        return "—"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def where(record: dict) -> str:
    """The machine a model was measured on, its accelerator, and the torch threads it used."""
    threads = record["torch_threads"]
    device = "" if record.get("device", "cpu") == "cpu" else f", {record['device']}"
    return (f"{record['machine']}{device}; "
            + ("one thread per run" if threads == 1 else f"{threads} threads"))


def training_time(record: dict) -> str:
    text = duration(record.get("train_seconds"))
    if record.get("resumed_from_step"):
        text += f" (last sitting, resumed at step {record['resumed_from_step']:,})"
    return text


def evaluation_time(record: dict) -> str:
    text = duration(record.get("eval_seconds"))
    if record.get("trained_classifier"):
        text += " (training the feature classifier included)"
    return text


def wall_table(results: dict[str, dict | None]) -> str:
    lines = ["| model | training | evaluation | machine |", "|---|---|---|---|"]
    for name, record in results.items():
        cells = (["missing"] * 3 if record is None else
                 [training_time(record), evaluation_time(record), where(record)])
        lines.append(row(MODELS[name][0], cells))
    return "\n".join(lines)


def classifier_accuracy(results: dict[str, dict | None]) -> str:
    """The feature classifier's test accuracy as any measured model recorded it."""
    for record in results.values():
        if record and record["metrics"].get("classifier_accuracy") is not None:
            return f"its test accuracy: {record['metrics']['classifier_accuracy']:.3f}"
    return "its test accuracy is recorded with the first model measured"


def likelihood_examples(results: dict[str, dict | None], args) -> int:
    """The test images of the VAE's IWAE bound: as its result file records, else --likelihood-
    examples (the VAE not measured yet)."""
    record = results.get("vae")
    for override in (record or {}).get("eval_overrides", []):
        if override.startswith("likelihood_examples="):
            return int(override.split("=", 1)[1])
    return args.likelihood_examples


def shown(path: Path) -> str:
    """A path as the docs show it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def section(results: dict[str, dict | None], args) -> str:
    n = likelihood_examples(results, args)
    commands = "\n".join(f"    gentool train dataset={args.dataset} seed={args.seed} "
                         f"{' '.join(MODELS[m][1])}" for m in MODELS if m != "pca")
    folder = shown(cell_path(args.cells, args.dataset, args.seed, "x").parent)
    return f"""## Model comparison on {args.dataset}

Measured by `scripts/benchmarks.py`, seed {args.seed}, latent size {LATENT} for every encoder and
PCA; one result file per model in `{folder}/` (a model without one is marked missing).

{metrics_table(results)}

- Metrics are `gentool eval`'s (README, "Evaluating models"). Fréchet distance, precision,
  recall and classes are measured in the features of gentool's own classifier of {args.dataset}
  ({classifier_accuracy(results)}) against the test images, from as many samples. The
  real-vs-real row compares as many training images with the test images: the floor a perfect
  model would reach.
- AE, linear AE and PCA have no prior: their samples decode codes drawn from a Gaussian fitted to
  their training codes. GANs have no encoder, so they have no reconstruction or probe.
- IWAE NLL: the k=5000 bound on the first {n} test images (only the VAE defines a likelihood);
  its decoder is Bernoulli on grey levels, so this is a cross-entropy, not a bound on a discrete
  likelihood.
- The DCGAN is the preset as it is, at its own budget. The usual stabilisers are measured
  against it in [gan_study.md](gan_study.md), section 3: R1 over 3 seeds at its budget; hinge
  loss, spectral norm, minibatch std and two time-scales in single-seed 2,000-step probes.

Wall times, from the result files (PCA: fitting it counts as its training):

{wall_table(results)}

- An evaluation that found no cached feature classifier trained it (once per data set, then
  cached in data_dir; the table says where). The VAE's evaluation includes the IWAE bound
  ({n:,} test images × 5,000 samples) and the naive estimator (10^5 prior samples for 100
  images).

Commands (then `gentool eval checkpoint=<run>/checkpoints/last.pt
likelihood_examples={n}`):

{commands}
"""


def write_docs(args) -> str:
    text = section(read_cells(args), args)
    write_section(Path(args.out), BEGIN, END, text, heading="# Benchmarks\n")
    return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS),
                        help="the models to measure (the table shows every model)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiply every model's training steps (a quick check: 0.01)")
    parser.add_argument("--likelihood-examples", type=int, default=1000,
                        help="test examples of the IWAE k=5000 bound (it costs 5000 passes each)")
    parser.add_argument("--eval", nargs="*", default=[], help="more gentool eval overrides")
    parser.add_argument("--cells", default=str(CELLS), help="the result files' folder")
    parser.add_argument("--runs", default=str(REPO / "runs" / "benchmarks"))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument("--table-only", action="store_true",
                        help="measure nothing: rebuild the section of --out from the files")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.table_only:
        for name in args.models:
            if measure_cell(name, args):
                write_docs(args)   # the docs follow every finished model
    print(write_docs(args))


if __name__ == "__main__":
    main()
