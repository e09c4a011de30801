#!/usr/bin/env python
"""Mode-collapse study on the 2-D toy sets: a plain GAN against each remedy, several seeds.

Every configuration trains through the real `gentool train` path (`run_train` on the composed
config) on `ring` (8 Gaussians, sigma 0.01) and `grid` (25 Gaussians, sigma 0.05), and is scored
on 2,500 samples with the VEEGAN/PacGAN metrics: modes captured (a mode counts when it is the
nearest centre of at least one sample within 3 sigma of it) and the share of such high-quality
samples. The table (mean +- std over seeds) is written as markdown, failures included.

    .venv/bin/python scripts/mode_collapse.py                      # the full table, docs/mode_collapse.md
    .venv/bin/python scripts/mode_collapse.py --steps 500 --seeds 1 --configs plain combined
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The remedies, each on top of the plain non-saturating GAN of the published toy experiments
# (experiment=gan_toy: its architecture, optimiser and batch size). `{half}` is replaced by half
# the run length, for switches that anneal.
BASE = "experiment=gan_toy"
CONFIGS = {
    "plain": [],
    "unrolled (k=5)": ["model.unrolled_steps=5"],
    "minibatch discrimination": [
        "model.discriminator.minibatch_discrimination={num_kernels:50,kernel_dim:5}"],
    "instance noise": ["model.instance_noise.sigma=0.1",
                       "model.instance_noise.anneal_steps={half}"],
    "R1 (gamma=0.1)": ["model.r1=0.1"],
    "WGAN-GP (n_critic=5)": ["loss=wasserstein", "model.gradient_penalty=10", "model.n_critic=5"],
    "combined (experiment=gan_toy_stabilised)": ["experiment=gan_toy_stabilised"],
}
# Short names for --configs.
KEYS = {"plain": "plain", "unrolled": "unrolled (k=5)", "mbd": "minibatch discrimination",
        "noise": "instance noise", "r1": "R1 (gamma=0.1)", "gp": "WGAN-GP (n_critic=5)",
        "combined": "combined (experiment=gan_toy_stabilised)"}
DATASETS = {"ring": 8, "grid": 25}


def job_overrides(config: str, dataset: str, seed: int, steps: int) -> list[str]:
    extra = [o.format(half=steps // 2) for o in CONFIGS[config]]
    base = [] if any(o.startswith("experiment=") for o in extra) else [BASE]
    return [*base, *extra, f"dataset={dataset}", f"seed={seed}", "device=cpu",
            f"trainer.max_steps={steps}", f"trainer.log_every={max(1, steps // 10)}",
            f"trainer.eval_every={steps}", f"trainer.checkpoint_every={steps}",
            "trainer.progress_bar=false"]


def run_job(job: tuple[str, str, int, int, str]) -> dict:
    config, dataset, seed, steps, out = job
    import torch

    torch.set_num_threads(1)  # one core per worker: the workers run side by side
    from hydra import compose, initialize_config_module

    import gentool.cli  # noqa: F401  registers the resolver and schemas
    from gentool.train import run_train

    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("train", overrides=job_overrides(config, dataset, seed, steps))
    started = time.perf_counter()
    run_train(cfg, out)
    metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"config": config, "dataset": dataset, "seed": seed, "seconds":
            time.perf_counter() - started, "modes": metrics["test/modes"],
            "high_quality": 100 * metrics["test/high_quality"],
            "reverse_kl": metrics["test/reverse_kl"]}


def mean_std(values: list[float], digits: int = 1) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def table(results: list[dict], configs: list[str], seeds: int) -> str:
    lines = ["| configuration | ring: modes (of 8) | ring: % high quality | "
             "grid: modes (of 25) | grid: % high quality | grid: reverse KL |",
             "|---|---|---|---|---|---|"]
    for config in configs:
        cells = []
        for dataset in DATASETS:
            rows = [r for r in results if r["config"] == config and r["dataset"] == dataset]
            if not rows:
                cells += ["—", "—"] + (["—"] if dataset == "grid" else [])
                continue
            cells += [mean_std([r["modes"] for r in rows]),
                      mean_std([r["high_quality"] for r in rows])]
            if dataset == "grid":
                cells.append(mean_std([r["reverse_kl"] for r in rows], 2))
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed(results: list[dict]) -> str:
    lines = ["| configuration | data | seed | modes | % high quality | reverse KL | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["config"], r["dataset"], r["seed"])):
        lines.append(f"| {r['config']} | {r['dataset']} | {r['seed']} | {r['modes']:.0f} | "
                     f"{r['high_quality']:.1f} | {r['reverse_kl']:.3f} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="generator steps per run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--configs", nargs="*", choices=sorted(KEYS), default=list(KEYS))
    parser.add_argument("--datasets", nargs="*", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "mode_collapse.md")
    parser.add_argument("--runs", type=Path, default=None,
                        help="keep the run directories here (default: a temporary folder)")
    args = parser.parse_args(argv)
    configs = [KEYS[k] for k in args.configs]
    runs = args.runs or Path(tempfile.mkdtemp(prefix="mode_collapse_"))
    jobs = [(c, d, s, args.steps, str(runs / f"{k}_{d}_{s}"))
            for k, c in zip(args.configs, configs) for d in args.datasets
            for s in range(args.seeds)]
    started = time.perf_counter()
    # spawn: each worker imports torch afresh and sets its own thread count.
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = []
        for result in pool.imap_unordered(run_job, jobs):
            results.append(result)
            print(f"{result['config']:<40} {result['dataset']:<5} seed {result['seed']}: "
                  f"{result['modes']:.0f} modes, {result['high_quality']:.1f}% high quality "
                  f"({result['seconds']:.0f} s)", flush=True)
    minutes = (time.perf_counter() - started) / 60
    report = (f"{table(results, configs, args.seeds)}\n\nPer run:\n\n{per_seed(results)}\n\n"
              f"{len(jobs)} runs of {args.steps} generator steps, {args.seeds} seeds, "
              f"{args.workers} workers, {minutes:.0f} minutes in all.\n")
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return report


if __name__ == "__main__":
    main()
