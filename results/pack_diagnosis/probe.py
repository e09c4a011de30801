#!/usr/bin/env python
"""The controls of the PacGAN diagnosis (README.md here): the GAN game through `GAN.train_step`
at a constant learning rate, on a run config composed like `gentool train`, printing every
`--every` steps the discriminator's loss, the size of its input gradient and of the generator's
parameter gradient, and the mode metrics of 2,500 samples.

    PYTHONPATH=src python results/pack_diagnosis/probe.py experiment=gan_toy_small model.pack=2
    ... --copies            each pack holds m copies of one sample instead of m independent ones
    ... --freeze-g-at 1000  from that step on only the discriminator trains (G fixed)
"""

from __future__ import annotations

import argparse

import torch
from hydra import compose, initialize_config_module

from gentool.config import setup
from gentool.data.toy2d import draw
from gentool.engine.step import StepContext
from gentool.methods import build_method
from gentool.methods.gan import GAN, pack_samples
from gentool.metrics.modes import mode_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="gentool train overrides")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--copies", action="store_true")
    parser.add_argument("--freeze-g-at", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_intermixed_args()
    torch.set_num_threads(1)
    if args.copies:
        GAN._packed = lambda self, x: pack_samples(x.repeat_interleave(self.pack, 0), self.pack)
    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        cfg = compose("train", overrides=args.overrides)
    torch.manual_seed(args.seed)
    method = build_method(cfg).train()
    ctx = StepContext(method.configure_optimizers(cfg.optimizer))
    source = cfg.dataset.source
    centres = _centres(cfg.dataset.name, source)
    sigma = float(source.sigma)
    batch = int(cfg.trainer.batch_size)
    for step in range(args.steps):
        ctx.step = step
        if args.freeze_g_at is not None and step >= args.freeze_g_at:
            real, _ = draw(centres, sigma, batch)
            with torch.no_grad():
                fake = method.generator(torch.randn(batch, method.latent_dim))
            loss, metrics = method._discriminator_loss(real, fake, None, 0.0)
            ctx.optimizer_step(loss, "discriminator")
        else:
            metrics = method.train_step(draw(centres, sigma, batch), ctx)
        if step % args.every == 0 or step == args.steps - 1:
            print(step, _report(method, metrics, centres, sigma), flush=True)


def _centres(name, source):
    from gentool.data.toy2d import grid_centres, ring_centres
    if name == "ring":
        return ring_centres(source.modes, source.radius)
    return grid_centres(source.side, source.spacing)


def _report(method, metrics, centres, sigma) -> str:
    z = torch.randn(2500, method.latent_dim)
    with torch.no_grad():
        method.eval()
        samples = method.generator(z)
        method.train()
        fake = method.generator(torch.randn(256, method.latent_dim))
    packs = method._packed(fake).requires_grad_(True)
    scores = method.discriminator(packs)
    (d_slope,) = torch.autograd.grad(scores.sum(), packs)
    method.generator.zero_grad()
    fake = method.generator(torch.randn(256, method.latent_dim))
    method.loss.generator_loss(method.discriminator(method._packed(fake))).backward()
    g_grad = torch.cat([p.grad.flatten() for p in method.generator.parameters()])
    method.zero_grad(set_to_none=True)
    modes = mode_metrics(samples, centres, sigma)
    return (f"d_loss {float(metrics['d_loss']):.3f}  |dD/dx| rms {d_slope.pow(2).mean().sqrt():.1e}"
            f"  |dL_G/dtheta| rms {g_grad.pow(2).mean().sqrt():.1e}"
            f"  modes {modes['modes']:.0f}  high quality {modes['high_quality']:.3f}")


if __name__ == "__main__":
    main()
