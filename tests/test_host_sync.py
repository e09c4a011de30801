"""The hot loop never waits for the device: no step but a logging step reads a tensor's value.

`.item()`, `int()`, `float()` and `bool()` of a tensor all dispatch `aten._local_scalar_dense`;
on a GPU each one stalls the host until the device has caught up. The per-step path of `fit`
(schedule, train step, metric window) is run here under a dispatch mode that counts them.
"""

import pytest
import torch
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)
from torch.utils._python_dispatch import TorchDispatchMode

from gentool.data import build_data
from gentool.engine.loop import _examples, _step_batches
from gentool.engine.metering import MetricWindow
from gentool.engine.schedule import apply_schedule
from gentool.engine.step import StepContext
from gentool.methods import build_method

SMALL_DCGAN = ["model.latent_dim=8", "model.generator.channels=8",
               "model.generator.max_channels=16", "model.discriminator.channels=8",
               "model.discriminator.max_channels=16"]
RING = ["model=gan", "dataset=ring", "model.latent_dim=2", "model.generator.hidden=[16]",
        "model.discriminator.hidden=[16]"]
FAMILIES = {
    "ae": ["model=ae"],
    "vae": ["model=vae"],
    "vae_iwae_gated": ["model=vae", "model.iwae_k=3", "model.encoder.gated=true"],
    "conv_vae": ["model=conv_vae"],
    "gan": RING,
    "gan_n_critic": [*RING, "model.n_critic=3"],
    "gan_unrolled": [*RING, "model.unrolled_steps=2"],
    "gan_r1_r2": [*RING, "model.r1=1", "model.r2=1"],
    "gan_gp": [*RING, "loss=wasserstein", "model.gradient_penalty=10"],
    "gan_weight_clip": [*RING, "loss=wasserstein", "model.weight_clip=0.01"],
    "gan_instance_noise": [*RING, "model.instance_noise.sigma=0.1",
                           "model.instance_noise.anneal_steps=10"],
    "gan_pack": [*RING, "model.pack=2", "model.discriminator.minibatch_std=true"],
    "gan_minibatch_discrimination": [
        *RING, "model.discriminator.minibatch_discrimination={num_kernels:4,kernel_dim:2}"],
    "cgan": ["model=cgan", *SMALL_DCGAN],
    "dcgan": ["model=dcgan", "dataset.range=[-1,1]", *SMALL_DCGAN],
    "dcgan_spectral_norm": ["model=dcgan", "model.discriminator.spectral_norm=true",
                            *SMALL_DCGAN],
    "pix2pix": ["model=pix2pix", "dataset=derived_pairs", "dataset@dataset.source=digits",
                "model.generator.channels=4", "model.discriminator.channels=4"],
}


class HostReads(TorchDispatchMode):
    """Counts reads of a tensor's value outside optimizer steps.

    torch.optim keeps its step counters on the host (unless `capturable`), and reads them there
    without waiting for any device, so reads inside `Optimizer.step` are not counted.
    """

    def __init__(self):
        super().__init__()
        self.count = 0
        self.in_optimizer = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and not self.in_optimizer:
            self.count += 1
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        def entered(*_):
            self.in_optimizer = True

        def left(*_):
            self.in_optimizer = False

        self.hooks = [register_optimizer_step_pre_hook(entered),
                      register_optimizer_step_post_hook(left)]
        return super().__enter__()

    def __exit__(self, *exc):
        for hook in self.hooks:
            hook.remove()
        return super().__exit__(*exc)


def test_the_counter_sees_item_int_and_bool():
    x = torch.ones(2)
    with HostReads() as reads:
        x.sum().item()
        int(x[0])
        bool(x.sum() > 0)
    assert reads.count == 3


@pytest.mark.parametrize("family", FAMILIES)
def test_no_train_step_reads_a_device_value_except_on_logging_steps(compose_train, family):
    cfg = compose_train("device=cpu", "trainer.batch_size=8", "trainer.schedule.name=cosine",
                        *FAMILIES[family])
    torch.manual_seed(0)
    data = build_data(cfg.dataset, cfg.data_dir, torch.device("cpu"), cfg.trainer.batch_size,
                      cfg.seed)
    method = build_method(cfg)
    optimizers = method.configure_optimizers(cfg.optimizer)
    ctx = StepContext(optimizers)
    batches = _step_batches(data.train, 0, method.batches_per_step)
    window = MetricWindow()
    schedule = dict(cfg.trainer.schedule)

    def step(n: int, logging: bool) -> None:
        apply_schedule(optimizers, schedule, n, 10)
        ctx.step, ctx.diagnostics = n, logging
        batch = next(batches)
        window.add(method.train_step(batch, ctx), _examples(batch))

    step(0, logging=False)   # the first step after building reads the EMA's update count once
    with HostReads() as reads:
        for n in range(1, 4):
            step(n, logging=False)
    assert reads.count == 0
    step(4, logging=True)    # logging steps measure diagnostics and may read values
    assert window.flush()["images_per_second"] > 0
