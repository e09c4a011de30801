#!/usr/bin/env python
"""Training throughput: gentool's VAE path against a bare tensor loop and a DataLoader loop.

The default MLP VAE (784-400-20, Bernoulli decoder, batch 128, Adam lr 1e-3) is trained for one
epoch (60,000 // 128 = 468 steps) of 28x28 grey images, three ways, in one process:

1. gentool: `run_train` on the composed `train` config (model=vae dataset=fashion_mnist
   loss=bernoulli), with the periodic work of a real run: scalars every 100 steps (the default
   log_every), one evaluation, picture set and checkpoint at the end (eval_every =
   checkpoint_every = max_steps), no progress bar.
2. bare: the same architecture written by hand in plain torch, the data already a float tensor
   in memory, one random permutation per epoch and index slices.
3. DataLoader: the common practice, `torchvision.datasets.FashionMNIST(transform=ToTensor())`
   (a PIL image built and converted per example) in a `DataLoader(batch_size=128, shuffle=True,
   drop_last=True, num_workers=--workers)`, the same model and optimizer as the bare loop.

Data: Fashion-MNIST from Debian's dataset-fashion-mnist package (/usr/share/datasets/
fashion-mnist) when installed, else (or with --random) random uint8 images of the same shape.
Either way the four IDX files are laid out plainly in a temporary <tmp>/FashionMNIST/raw/
(torchvision's layout), and all three loops read those same files: gentool through its own
loader (data_dir=<tmp> dataset.source.download=false), the other two through torchvision.

Throughput definition, the same for all three: images/s = steps x 128 / the wall time from just
before the first training step (including building the first epoch's order, or the DataLoader
iterator and its worker start-up, which a new epoch pays again) to the end of the last training
step, the device synchronised on both clock readings. One-time setup (reading files, building the
model and optimizer, gentool's config and TensorBoard writer) and gentool's end-of-run
evaluation, pictures and checkpoint are outside it; gentool's scalar logging every 100 steps is
inside it. For gentool the two clock readings are taken by thin wrappers around names in
gentool.engine.loop (the first MetricWindow, made just before the loop, and the first call of
evaluate, just after the last step); the images/s gentool itself logs to TensorBoard
(train/images_per_second, per 100-step window) is read back as a cross-check, and the end-to-end
wall time of run_train is printed too.

Each loop is warmed up first (a few steps, fresh model); with --repeats N the three run N times,
interleaved in rotating order, and the median is reported.

GAN section (--sections gan): seconds per train step of the two GAN presets, gentool against a
bare loop of the same networks, in the same process:

- toy GAN: `experiment=gan_toy dataset=grid` (2-D points drawn fresh per batch);
- DCGAN: `experiment=dcgan_fashion_mnist` on the same IDX files as above (random images when
  Fashion-MNIST is absent).

gentool is `run_train` on the composed config, timed over its step loop as above (its scalar
logging every `trainer.log_every` steps inside, evaluation and checkpoint at the end outside).
The bare loop takes the networks gentool builds from that config (a fresh copy: same layers,
same initialisation) and trains them by hand with the same update: one discriminator step on
a real batch and a detached generated one, then one generator step, the non-saturating loss
written with softplus, Adam with each player's lr and betas from the config, the learning-rate
schedule applied per step, and the EMA of the generator's weights when the preset keeps one.
Target: gentool / bare <= 1.10 in seconds per step (the VAE's >= 0.90 in images/s).

    .venv/bin/python scripts/bench.py [--device auto|cpu|cuda] [--epochs 1] [--repeats 1]
                                      [--workers N] [--threads N] [--random]
                                      [--sections vae gan] [--gan-steps 300] [--dcgan-steps 100]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BATCH = 128
LR = 1e-3
IMAGES = 60_000
TEST_IMAGES = 10_000
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TARGET_BARE = 0.90       # gentool at least 90% of the bare loop
TARGET_DATALOADER = 2.0  # gentool at least twice the DataLoader loop
TARGET_GAN = 1.10        # gentool's seconds per GAN step at most 1.10 x the bare loop's
SECTIONS = ("vae", "gan")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--epochs", type=int, default=1, help="epochs per measured run (default 1)")
    p.add_argument("--repeats", type=int, default=1, help="measured runs per loop; median shown")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="DataLoader workers of the common-practice loop (default: min(4, cores))")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="torch intra-op threads for all three loops (default: torch's own)")
    p.add_argument("--random", action="store_true", help="random images even if Fashion-MNIST "
                   "is installed")
    p.add_argument("--images", type=int, default=IMAGES,
                   help="training images when random (default 60000; small for smoke tests)")
    p.add_argument("--limit-steps", type=int, default=None,
                   help="stop each measured run after this many steps (smoke tests)")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                   help="what to measure: the VAE loops, the GAN presets, or both (default)")
    p.add_argument("--gan-steps", type=int, default=300,
                   help="measured steps of the toy GAN per run (default 300)")
    p.add_argument("--dcgan-steps", type=int, default=100,
                   help="measured steps of the DCGAN per run (default 100)")
    return p.parse_args(argv)


# -- data ------------------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """A plain IDX file holding a uint8 array (magic 0x0000_08_<ndim>, big-endian dims)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as file:
        file.write(bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape))
        file.write(array.tobytes())


def prepare_data(root: Path, force_random: bool, images: int) -> str:
    """Fill <root>/FashionMNIST/raw with the four plain IDX files; returns what they hold."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    if not force_random and all((DEBIAN_DIR / f"{name}.gz").is_file() for name in IDX_FILES):
        for name in IDX_FILES:  # plain copies: torchvision's class reads only unpacked files
            with gzip.open(DEBIAN_DIR / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        return f"Fashion-MNIST (Debian package, {DEBIAN_DIR})"
    rng = np.random.default_rng(0)
    n_test = min(TEST_IMAGES, max(images // 6, BATCH))
    for prefix, n in (("train", images), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    why = "--random" if force_random else f"Fashion-MNIST not found in {DEBIAN_DIR}"
    return f"random uint8 images, {images} x 1x28x28 ({why})"


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


# -- 1. gentool ------------------------------------------------------------------------------

def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_module

    from gentool.config import setup

    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        return compose("train", overrides=overrides)


@contextlib.contextmanager
def step_stopwatch(device: torch.device, marks: dict):
    """Clock readings around fit()'s step loop, taken by wrapping two names it calls: the first
    MetricWindow is made just before the first step, evaluate is first called after the last."""
    from gentool.engine import loop

    original_window, original_evaluate = loop.MetricWindow, loop.evaluate

    class TimedWindow(original_window):
        def __init__(self):
            if "start" not in marks:
                marks["start"] = clock(device)
                marks["start_cpu"] = time.process_time()
            super().__init__()

    def timed_evaluate(*args, **kwargs):
        if "end" not in marks:
            marks["end"] = clock(device)
            marks["end_cpu"] = time.process_time()
        return original_evaluate(*args, **kwargs)

    loop.MetricWindow, loop.evaluate = TimedWindow, timed_evaluate
    try:
        yield marks
    finally:
        loop.MetricWindow, loop.evaluate = original_window, original_evaluate


def logged_step_seconds(run_dir: Path, batch: int) -> tuple[float, int]:
    """Seconds of the step loop as gentool logs it: sum over its windows of images / (images/s)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = []
    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        if "train/images_per_second" in acc.Tags()["scalars"]:
            events += acc.Scalars("train/images_per_second")
    seconds, previous = 0.0, 0
    for event in sorted(events, key=lambda e: e.step):
        seconds += (event.step - previous) * batch / event.value
        previous = event.step
    return seconds, previous


def run_gentool(data_dir: Path, steps: int, device: torch.device, run_dir: Path) -> dict:
    from gentool.train import run_train

    cfg = compose_train([
        "model=vae", "dataset=fashion_mnist", "loss=bernoulli", "optimizer=adam",
        f"trainer.batch_size={BATCH}", f"trainer.max_steps={steps}",
        f"trainer.eval_every={steps}", f"trainer.checkpoint_every={steps}",
        "trainer.progress_bar=false", f"device={device}", f"data_dir={data_dir}",
        "dataset.source.download=false"])
    marks: dict = {}
    with step_stopwatch(device, marks):
        started = clock(device)
        run_train(cfg, run_dir)
        wall = clock(device) - started
    logged, last_step = logged_step_seconds(run_dir, BATCH)
    assert last_step == steps, f"gentool logged up to step {last_step}, expected {steps}"
    return {"seconds": marks["end"] - marks["start"], "logged_seconds": logged, "wall": wall}


# -- 2. bare tensor loop ---------------------------------------------------------------------

def make_vae(device):
    enc = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 40)).to(device)
    dec = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784)).to(device)
    return enc, dec, torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=LR)


def vae_step(enc, dec, opt, x):
    mu, logvar = enc(x).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    loss = (recon + kl).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def run_bare(x: torch.Tensor, steps: int, device: torch.device) -> dict:
    """x: float32 [N, 784] in [0, 1], already on the device."""
    torch.manual_seed(0)
    enc, dec, opt = make_vae(device)
    per_epoch, step = len(x) // BATCH, 0
    started = clock(device)
    while step < steps:
        order = torch.randperm(len(x), device=device)
        for b in range(min(per_epoch, steps - step)):
            vae_step(enc, dec, opt, x[order[b * BATCH:(b + 1) * BATCH]])
        step += min(per_epoch, steps - step)
    return {"seconds": clock(device) - started}


# -- 3. DataLoader + ToTensor ----------------------------------------------------------------

def run_dataloader(dataset, steps: int, device: torch.device, workers: int) -> dict:
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    enc, dec, opt = make_vae(device)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True,
                        num_workers=workers, pin_memory=device.type == "cuda")
    step = 0
    started = clock(device)
    while step < steps:
        for x, _ in loader:  # a new iterator (and new workers) each epoch, as usual
            vae_step(enc, dec, opt, x.to(device, non_blocking=True).flatten(1))
            step += 1
            if step == steps:
                break
    return {"seconds": clock(device) - started}


# -- 4. GAN presets: gentool against a bare loop of the same networks ------------------------

GAN_PRESETS = {
    "toy GAN (experiment=gan_toy dataset=grid)": ["experiment=gan_toy", "dataset=grid"],
    "DCGAN (experiment=dcgan_fashion_mnist)": ["experiment=dcgan_fashion_mnist",
                                               "dataset.source.download=false"],
}


def gan_config(overrides: list[str], data_dir: Path, steps: int, device: torch.device):
    return compose_train([*overrides, f"trainer.max_steps={steps}", f"trainer.eval_every={steps}",
                          f"trainer.checkpoint_every={steps}", "trainer.progress_bar=false",
                          f"device={device}", f"data_dir={data_dir}"])


def run_gentool_gan(cfg, device: torch.device, run_dir: Path) -> dict:
    from gentool.train import run_train

    marks: dict = {}
    with step_stopwatch(device, marks):
        run_train(cfg, run_dir)
    return {"seconds": marks["end"] - marks["start"],
            "cpu_seconds": marks["end_cpu"] - marks["start_cpu"]}


def bare_gan_source(cfg, data_dir: Path, device: torch.device):
    """A function n -> a real batch [n, *shape], as a hand-written loop would draw it: fresh
    points of the toy mixture, or index slices of a random permutation of the images in memory
    (in the data's range)."""
    from gentool.data import build_data

    data = build_data(cfg.dataset, str(data_dir), device, cfg.trainer.batch_size, cfg.seed)
    if len(cfg.dataset.shape) == 1:  # the toy sets: the mixture's centres and sigma
        from gentool.data.toy2d import draw

        centres, sigma = data.train.centres, data.train.sigma
        return lambda n: draw(centres, sigma, n)[0]
    images = torch.cat([x for x, _ in data.train.epoch()])
    state = {"order": torch.randperm(len(images), device=device), "at": 0}

    def source(n):
        if state["at"] + n > len(images):
            state["order"], state["at"] = torch.randperm(len(images), device=device), 0
        index = state["order"][state["at"]:state["at"] + n]
        state["at"] += n
        return images[index]

    return source


def run_bare_gan(cfg, source, steps: int, device: torch.device) -> dict:
    """The update of the preset written by hand on the networks gentool builds from `cfg`."""
    import copy
    import math

    from omegaconf import OmegaConf

    from gentool.methods import build_method

    torch.manual_seed(cfg.seed)
    built = build_method(cfg)
    g, d = built.generator.to(device), built.discriminator.to(device)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    optimizers = {}
    for name, net in (("generator", g), ("discriminator", d)):
        settings = model[f"{name}_optimizer"]
        optimizers[name] = torch.optim.Adam(net.parameters(), lr=settings["lr"],
                                            betas=tuple(settings["betas"]))
    base_lr = {name: opt.param_groups[0]["lr"] for name, opt in optimizers.items()}
    cosine = cfg.trainer.schedule.name == "cosine"
    ema = copy.deepcopy(g).requires_grad_(False) if model["ema"]["enabled"] else None
    decay = float(model["ema"]["decay"])
    batch, latent = cfg.trainer.batch_size, model["latent_dim"]
    started, started_cpu = clock(device), time.process_time()
    for step in range(steps):
        if cosine:
            factor = 0.5 * (1 + math.cos(math.pi * step / steps))
            for name, opt in optimizers.items():
                opt.param_groups[0]["lr"] = base_lr[name] * factor
        real = source(batch)
        with torch.no_grad():
            fake = g(torch.randn(batch, latent, device=device))
        d_loss = 0.5 * F.softplus(-d(real)).mean() + 0.5 * F.softplus(d(fake)).mean()
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        optimizers["discriminator"].step()
        d.requires_grad_(False)
        g_loss = 0.5 * F.softplus(-d(g(torch.randn(batch, latent, device=device)))).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        optimizers["generator"].step()
        d.requires_grad_(True)
        if ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(g.parameters()), 1 - decay)
                for mine, theirs in zip(ema.buffers(), g.buffers()):
                    mine.copy_(theirs)
    return {"seconds": clock(device) - started, "cpu_seconds": time.process_time() - started_cpu}


def gan_section(args, device: torch.device, data_dir: Path, runs: Path) -> dict:
    """Seconds per step of each GAN preset, gentool and bare, interleaved; medians and ratios.

    Both wall and CPU seconds (process time) are kept. The ratio is judged on CPU seconds on a
    CPU device, where they count only this process's work and so are not inflated by other
    processes sharing the cores, and on wall seconds on a GPU, whose work process time misses.
    """
    basis = "cpu_seconds" if device.type == "cpu" else "seconds"
    run_number = iter(range(10**6))
    results = {}
    for label, overrides in GAN_PRESETS.items():
        steps = args.gan_steps if "gan_toy" in overrides[0] else args.dcgan_steps
        if args.limit_steps is not None:
            steps = min(steps, args.limit_steps)
        cfg = gan_config(overrides, data_dir, steps, device)
        warm = gan_config(overrides, data_dir, min(args.warmup_steps, steps), device)
        source = bare_gan_source(cfg, data_dir, device)
        loops = {"gentool": lambda c, n: run_gentool_gan(c, device, runs / f"gan{next(run_number)}"),
                 "bare": lambda c, n: run_bare_gan(c, source, n, device)}
        for name in loops:  # warm-up
            loops[name](warm, warm.trainer.max_steps)
        per_step: dict[str, dict[str, list[float]]] = {
            name: {"seconds": [], "cpu_seconds": []} for name in loops}
        for r in range(args.repeats):
            for name in (list(loops) if r % 2 == 0 else list(loops)[::-1]):
                out = loops[name](cfg, steps)
                for key in ("seconds", "cpu_seconds"):
                    per_step[name][key].append(out[key] / steps)
            g, b = per_step["gentool"], per_step["bare"]
            print(f"{label}, repeat {r + 1}/{args.repeats}: gentool {1e3 * g['seconds'][-1]:.2f} "
                  f"ms/step ({1e3 * g['cpu_seconds'][-1]:.2f} CPU), bare "
                  f"{1e3 * b['seconds'][-1]:.2f} ms/step ({1e3 * b['cpu_seconds'][-1]:.2f} CPU)")
        median = {name: {key: statistics.median(v) for key, v in values.items()}
                  for name, values in per_step.items()}
        results[label] = {"steps": steps, "batch": cfg.trainer.batch_size, "per_step": median,
                          "ratio": median["gentool"][basis] / median["bare"][basis],
                          "wall_ratio": median["gentool"]["seconds"] / median["bare"]["seconds"],
                          "cpu_ratio": (median["gentool"]["cpu_seconds"] /
                                        median["bare"]["cpu_seconds"])}
    print()
    print(f"Medians of {args.repeats} interleaved run(s) each:")
    print("| GAN preset | steps | gentool ms/step (CPU) | bare ms/step (CPU) | gentool / bare, "
          "wall | gentool / bare, CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        g, b = r["per_step"]["gentool"], r["per_step"]["bare"]
        print(f"| {label} | {r['steps']} | {1e3 * g['seconds']:.2f} ({1e3 * g['cpu_seconds']:.2f}) "
              f"| {1e3 * b['seconds']:.2f} ({1e3 * b['cpu_seconds']:.2f}) | {r['wall_ratio']:.3f} "
              f"| {r['cpu_ratio']:.3f} |")
    print()
    what = "CPU seconds" if basis == "cpu_seconds" else "wall seconds"
    for label, r in results.items():
        print(f"{'PASS' if r['ratio'] <= TARGET_GAN else 'FAIL'}: {label} gentool / bare = "
              f"{r['ratio']:.3f} in {what} per step (target <= {TARGET_GAN:.2f})")
    return results


# -- driver ----------------------------------------------------------------------------------

def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            sys.exit("bench: --device cuda but no CUDA GPU is available")
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="gentool-bench-") as tmp:
        tmp = Path(tmp)
        data_label = prepare_data(tmp / "data", args.random, args.images)
        what = "CUDA " + torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        print(f"data: {data_label}")
        print(f"device: {device} ({what}); torch {torch.__version__}; "
              f"{torch.get_num_threads()} torch threads; {os.cpu_count()} CPU cores")
        load_before = os.getloadavg()
        result: dict = {"device": str(device), "data": data_label}
        if "vae" in args.sections:
            result.update(vae_section(args, device, tmp))
        if "gan" in args.sections:
            print()
            result["gan"] = gan_section(args, device, tmp / "data", tmp)
        load_after = os.getloadavg()
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f} "
          "(this benchmark itself adds about the number of threads; much more means other "
          "work shared the CPU and the figures are not clean)".format(*load_before, *load_after))
    return result


def vae_section(args, device: torch.device, tmp: Path) -> dict:
    """The VAE three ways (gentool, bare, DataLoader); images/s and the ratios."""
    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    dataset = FashionMNIST(str(tmp / "data"), train=True, transform=ToTensor())
    n = len(dataset)
    x_bare = (dataset.data.to(device).flatten(1).to(torch.float32) / 255.0).contiguous()
    per_epoch = n // BATCH
    steps = args.epochs * per_epoch
    if args.limit_steps is not None:
        steps = min(steps, args.limit_steps)
    print(f"VAE: {n} training images")
    print(f"model: MLP VAE 784-400-20, Bernoulli (BCE-with-logits) + KL, Adam lr {LR}; "
          f"batch {BATCH}; {steps} steps per run ({args.epochs} epoch(s) of {per_epoch} "
          f"full batches{', limited' if steps < args.epochs * per_epoch else ''}); "
          f"DataLoader num_workers={args.workers}; {args.repeats} repeat(s), median shown")
    print("images/s = steps x batch / wall time of the training-step loop (device synced), "
          "from just before the first step (incl. the epoch's order / DataLoader iterator) to "
          "the end of the last; excludes file loading, model/optimizer/writer setup and "
          "gentool's final evaluation, pictures and checkpoint; includes gentool's scalar "
          "logging every 100 steps.")
    run_number = iter(range(10**6))

    def gentool(n_steps):
        return run_gentool(tmp / "data", n_steps, device, tmp / f"run{next(run_number)}")

    loops = {
        "gentool (run_train)": gentool,
        "bare tensor loop": lambda n_steps: run_bare(x_bare, n_steps, device),
        f"DataLoader + ToTensor (workers={args.workers})":
            lambda n_steps: run_dataloader(dataset, n_steps, device, args.workers),
    }
    names = list(loops)
    for name in names:  # warm-up: kernels, allocator, page cache, worker start-up
        loops[name](min(args.warmup_steps, steps))
    results: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(args.repeats):
        order = names[r % 3:] + names[:r % 3]  # rotate who goes first
        for name in order:
            out = loops[name](steps)
            out["images_per_second"] = steps * BATCH / out["seconds"]
            results[name].append(out)
        last = {name: results[name][-1]["images_per_second"] for name in names}
        print(f"repeat {r + 1}/{args.repeats}: " + "; ".join(
            f"{name} {last[name]:,.0f} images/s" for name in names) +
            f"; gentool/bare {last[names[0]] / last[names[1]]:.2f}")
    rate = {name: statistics.median(o["images_per_second"] for o in results[name])
            for name in names}
    g, bare, dl = names
    print()
    print("| loop | images/s | ratio to bare loop |")
    print("|---|---:|---:|")
    for name in names:
        print(f"| {name} | {rate[name]:,.0f} | {rate[name] / rate[bare]:.2f} |")
    print()
    gentool_runs = results[g]
    logged = statistics.median(steps * BATCH / o["logged_seconds"] for o in gentool_runs)
    wall = statistics.median(o["wall"] for o in gentool_runs)
    step_s = statistics.median(o["seconds"] for o in gentool_runs)
    print(f"gentool, as it logs itself (TensorBoard train/images_per_second over its windows): "
          f"{logged:,.0f} images/s")
    print(f"gentool run_train end to end: {wall:.2f} s, of which {step_s:.2f} s training steps "
          f"and {wall - step_s:.2f} s setup, final evaluation, pictures, checkpoint and embedding")
    ratio_bare, ratio_dl = rate[g] / rate[bare], rate[g] / rate[dl]
    print(f"gentool / DataLoader: {ratio_dl:.2f}x")
    checks = [("gentool / bare", ratio_bare, TARGET_BARE),
              ("gentool / DataLoader", ratio_dl, TARGET_DATALOADER)]
    for label, value, target in checks:
        print(f"{'PASS' if value >= target else 'FAIL'}: {label} = {value:.2f} "
              f"(target >= {target:.2f})")
    return {"steps": steps, "images_per_second": rate,
            "ratio_to_bare": {name: rate[name] / rate[bare] for name in names},
            "gentool_logged_images_per_second": logged, "gentool_wall_seconds": wall,
            "checks": {label: value >= target for label, value, target in checks}}


if __name__ == "__main__":
    main()
