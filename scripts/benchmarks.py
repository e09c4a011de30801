#!/usr/bin/env python
"""The model-comparison table of docs/benchmarks.md: train each model, then `gentool eval` it.

AE, linear AE, PCA, VAE, DCGAN and a stabilised DCGAN on one data set (Fashion-MNIST by default,
from Debian's dataset-fashion-mnist or data_dir), every model through the real `run_train` and
`run_eval` paths, PCA through the same evaluation suites as a model with encode/decode. Runs land
in --runs (one folder per model; a finished one is reused, so the script can be re-run after an
interruption) and the markdown table, with the commands, goes to --out (between this script's
markers: the rest of that file is kept).

    .venv/bin/python scripts/benchmarks.py                       # the table in docs/benchmarks.md
    .venv/bin/python scripts/benchmarks.py --models vae ae --steps-scale 0.01 --out /tmp/b.md
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from markdown_section import markers, write_section

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = markers("scripts/benchmarks.py")   # the section of --out this script owns

LATENT = 20
# name -> (label, train overrides). Every encoder has LATENT dimensions, like PCA.
MODELS = {
    "ae": ("AE (MLP 784-400-20)", ["model=ae", f"model.latent_dim={LATENT}",
                                   "model.encoder.hidden=[400]", "model.decoder.hidden=[400]",
                                   "trainer.max_steps=10000"]),
    "ae_linear": ("linear AE", ["model=ae_linear", f"model.latent_dim={LATENT}",
                                "trainer.max_steps=10000"]),
    "pca": ("PCA", []),
    "vae": ("VAE (MLP 784-400-20, Bernoulli)", ["model=vae", f"model.latent_dim={LATENT}",
                                                "trainer.max_steps=10000"]),
    "dcgan": ("DCGAN", ["experiment=dcgan_fashion_mnist", "trainer.max_steps=5000"]),
    "dcgan_stabilised": ("DCGAN + hinge + spectral norm + minibatch std",
                         ["experiment=dcgan_fashion_mnist", "loss=hinge",
                          "model.discriminator.spectral_norm=true",
                          "model.discriminator.batch_norm=false",
                          "model.discriminator.minibatch_std=true", "trainer.max_steps=5000"]),
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


def train_overrides(name: str, args) -> list[str]:
    overrides = [f"dataset={args.dataset}", f"seed={args.seed}", f"device={args.device}",
                 f"data_dir={args.data_dir}", "trainer.progress_bar=false", *MODELS[name][1]]
    if args.steps_scale != 1.0:
        steps = next(int(o.split("=")[1]) for o in overrides if o.startswith("trainer.max_steps"))
        scaled = max(2, int(steps * args.steps_scale))
        overrides += [f"trainer.max_steps={scaled}", f"trainer.eval_every={scaled}",
                      f"trainer.checkpoint_every={scaled}", f"trainer.log_every={scaled}"]
    return overrides


def eval_overrides(args) -> list[str]:
    return [f"device={args.device}", f"data_dir={args.data_dir}", f"seed={args.seed}",
            f"likelihood_examples={args.likelihood_examples}", *args.eval]


def compose(config: str, overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_module

    from gentool.config import setup

    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        return hydra_compose(config, overrides=overrides)


def measure(name: str, args) -> dict:
    """Train (unless already done) and evaluate one model; its eval metrics."""
    from gentool.evaluate import run_eval
    from gentool.train import run_train

    run = Path(args.runs) / name
    metrics_file = run / "metrics.json"
    if not (run / "checkpoints" / "last.pt").is_file():
        started = time.perf_counter()
        run_train(compose("train", train_overrides(name, args)), run)
        print(f"{name}: trained in {time.perf_counter() - started:.0f} s", flush=True)
    record = json.loads(metrics_file.read_text())
    if not any(key.startswith("eval/") for key in record):
        started = time.perf_counter()
        run_eval(compose("eval", [*eval_overrides(args),
                                  f"checkpoint={run}/checkpoints/last.pt"]))
        print(f"{name}: evaluated in {time.perf_counter() - started:.0f} s", flush=True)
        record = json.loads(metrics_file.read_text())
    return {key[5:]: value for key, value in record.items() if key.startswith("eval/")}


def measure_pca(args) -> dict:
    """PCA with LATENT components through the same suites a trained autoencoder gets."""
    import torch

    from gentool.engine.device import resolve_device, seed_everything
    from gentool.evaluate.command import evaluate
    from gentool.evaluate.context import EvalContext
    from gentool.metrics.pca import PCA

    out = Path(args.runs) / "pca" / "metrics.json"
    if out.is_file():
        return json.loads(out.read_text())
    cfg = compose("eval", eval_overrides(args))
    dataset_cfg = compose("train", [f"dataset={args.dataset}"]).dataset
    seed_everything(args.seed)
    ctx = EvalContext(None, dataset_cfg, cfg, resolve_device(args.device))
    ctx.method = ScaledPCA(PCA(ctx.unit(ctx.train[0]), LATENT), *ctx.data.value_range)
    with torch.no_grad():
        rows = evaluate(ctx, ["reconstruction", "samples", "representation"], "pca")
    metrics = {k: v for row in rows for k, v in row.metrics().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


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


def cell(metrics: dict, key: str, digits: int) -> str:
    if key not in metrics:
        return "—"
    return f"{metrics[key]:.{digits}f}"


def table(results: dict[str, dict]) -> str:
    head = "| model | " + " | ".join(label for label, _, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, metrics in results.items():
        lines.append(f"| {MODELS[name][0]} | " + " | ".join(
            cell(metrics, key, digits) for _, key, digits in COLUMNS) + " |")
    source = {}   # a floor is the same for every model that reports it
    for metrics in results.values():
        source.update(metrics)
    for label, keys in FLOOR:
        lines.append(f"| *{label}* | " + " | ".join(
            cell(source, keys[key], digits) if key in keys else "" for _, key, digits in COLUMNS)
            + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps-scale", type=float, default=1.0,
                        help="multiply every model's training steps (a quick check: 0.01)")
    parser.add_argument("--likelihood-examples", type=int, default=1000,
                        help="test examples of the IWAE k=5000 bound (it costs 5000 passes each)")
    parser.add_argument("--eval", nargs="*", default=[], help="more gentool eval overrides")
    parser.add_argument("--runs", default=str(REPO / "runs" / "benchmarks"))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    results = {name: measure_pca(args) if name == "pca" else measure(name, args)
               for name in args.models}
    import torch

    machine = (torch.cuda.get_device_name(0) if args.device != "cpu" and torch.cuda.is_available()
               else f"CPU ({platform.processor() or platform.machine()}, "
                    f"{torch.get_num_threads()} threads)")
    commands = "\n".join(f"    gentool train dataset={args.dataset} seed={args.seed} "
                         f"{' '.join(MODELS[n][1])}" for n in args.models if n != "pca")
    text = f"""## Model comparison on {args.dataset}

Measured by `scripts/benchmarks.py` on {machine}, seed {args.seed}, latent size {LATENT} for
every encoder and PCA (the script prints each model's training and evaluation time).

{table(results)}

- Metrics are `gentool eval`'s (README, "Evaluating models"). Fréchet distance, precision,
  recall and classes are measured in the features of gentool's own classifier of {args.dataset}
  (its test accuracy: {results.get("vae", {}).get("classifier_accuracy", float("nan")):.3f})
  against the test images, from as many samples. The real-vs-real row compares as many
  training images with the test images: the floor a perfect model would reach.
- AE, linear AE and PCA have no prior: their samples decode codes drawn from a Gaussian fitted to
  their training codes. GANs have no encoder, so they have no reconstruction or probe.
- IWAE NLL: the k=5000 bound on the first {args.likelihood_examples} test images (only the VAE
  defines a likelihood); its decoder is Bernoulli on grey levels, so this is a cross-entropy, not
  a bound on a discrete likelihood.

Commands (then `gentool eval checkpoint=<run>/checkpoints/last.pt
likelihood_examples={args.likelihood_examples}`):

{commands}
"""
    write_section(Path(args.out), BEGIN, END, text, heading="# Benchmarks\n")
    print(text)


if __name__ == "__main__":
    main()
