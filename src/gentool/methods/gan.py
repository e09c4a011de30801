"""Generative adversarial networks, unconditional and class-conditional, with the stabilisers.

One generator step per train step, after `n_critic` discriminator steps on as many real batches
(`batches_per_step`: the engine hands a list of n_critic batches). Switches that combine:

- the adversarial loss (`loss/`: minimax, nonsaturating, wasserstein, hinge, least_squares);
- weight clipping (original WGAN; Wasserstein loss only), the WGAN-GP gradient penalty, R1 / R2;
- instance noise on both inputs of D, annealed to zero;
- unrolled GANs (Metz et al. 2017): the generator's loss is taken through `unrolled_steps`
  differentiable SGD updates of a functional copy of D, so its gradient sees how D would react;
- packing (PacGAN, Lin et al. 2018): the discriminator judges `pack` samples at once, m real or
  m generated ones concatenated along the feature (or channel) axis, so a generator that
  repeats itself is easier to spot in a pack than in a single sample;
- the discriminator's own switches (spectral norm, minibatch discrimination, minibatch std) live
  in its network config;
- the latent distribution: N(0, I), or a mixture of Gaussians (gentool.nets.latent);
- an exponential moving average of the generator's weights, used for logged and sampled images;
- rejection of the draws the discriminator scores lowest (gentool.rejection), a way of drawing
  samples that sampling commands apply and evaluations report beside the plain draws.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TypedDict

import torch
from torch.func import functional_call

from gentool.errors import GentoolError
from gentool.losses.adversarial import AdversarialLoss, Minimax
from gentool.losses.penalties import (add_instance_noise, clip_weights, gradient_penalty,
                                      instance_noise_sigma, r1_penalty, r2_penalty)
from gentool.methods.base import TwoPlayerMethod
from gentool.nets.latent import latent_prior
from gentool.options import (NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                             RejectionRate, UnitFloat)


class InstanceNoise(TypedDict, total=False):
    sigma: NonNegativeFloat
    anneal_steps: NonNegativeInt


class LatentMixture(TypedDict, total=False):
    components: NonNegativeInt
    sigma: PositiveFloat


class EMA(TypedDict, total=False):
    enabled: bool
    decay: UnitFloat


ADVERSARIAL_HINT = "an adversarial loss"   # check_loss_fits lists the shipped ones


class GAN(TwoPlayerMethod):
    accepts_losses = (AdversarialLoss,)
    accepted_losses_hint = ADVERSARIAL_HINT
    progress_keys = ("d_loss", "g_loss")

    def __init__(self, generator, discriminator, loss: AdversarialLoss, data_shape, value_range,
                 latent_dim: PositiveInt = 64, latent_mixture: LatentMixture | None = None,
                 num_classes: int | None = None,
                 conditional: bool = False, n_critic: PositiveInt = 1,
                 weight_clip: PositiveFloat | None = None,
                 gradient_penalty: NonNegativeFloat = 0.0, r1: NonNegativeFloat = 0.0,
                 r2: NonNegativeFloat = 0.0, instance_noise: InstanceNoise | None = None,
                 unrolled_steps: NonNegativeInt = 0, unrolled_lr: PositiveFloat = 1e-3,
                 ema: EMA | None = None, pack: PositiveInt = 1, rejection: RejectionRate = 0.0,
                 batch_size: PositiveInt | None = None, generator_optimizer: dict | None = None,
                 discriminator_optimizer: dict | None = None, name: str = "gan"):
        super().__init__()
        self._check(loss, name, conditional, num_classes, weight_clip, gradient_penalty,
                    instance_noise)
        self._check_pack(pack, batch_size, conditional)
        self.pack = pack
        self.rejection_rate = rejection
        self.loss = loss
        self.data_shape = tuple(data_shape)
        self.value_range = tuple(value_range)
        self.latent_dim = latent_dim
        self.latent = latent_prior(latent_dim, **dict(latent_mixture or {}))
        self.num_classes = num_classes if conditional else None
        self.n_critic = n_critic
        self.batches_per_step = n_critic
        self.weight_clip = weight_clip
        self.gp_weight, self.r1_weight, self.r2_weight = gradient_penalty, r1, r2
        noise = dict(instance_noise or {})
        self.noise_sigma0 = float(noise.get("sigma", 0.0))
        self.noise_anneal_steps = int(noise.get("anneal_steps", 0))
        self.unrolled_steps, self.unrolled_lr = unrolled_steps, unrolled_lr
        self.set_player_optimizers(generator_optimizer, discriminator_optimizer)
        # Points (the 2-D toy sets) are unbounded; images are squashed into the data's range.
        squashed_into = None if len(self.data_shape) == 1 else self.value_range
        self.generator = generator(latent_dim=latent_dim, data_shape=self.data_shape,
                                   value_range=squashed_into, num_classes=self.num_classes)
        # A packed discriminator sees m samples stacked on the first (feature or channel) axis.
        packed_shape = (pack * self.data_shape[0], *self.data_shape[1:])
        self.discriminator = discriminator(data_shape=packed_shape, num_classes=self.num_classes)
        ema = dict(ema or {})
        self.ema_decay = float(ema.get("decay", 0.999)) if ema.get("enabled", True) else None
        if self.ema_decay is not None:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            # Updates so far, saved with the weights: the decay warms up with it (below).
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
            # Its host-side copy, read from the buffer once (the first update after building or
            # loading), so the per-step decay needs no device-to-host read of the buffer.
            self._ema_count: int | None = None
            self.register_load_state_dict_post_hook(GAN._forget_ema_count)

    @staticmethod
    def _check(loss, name, conditional, num_classes, weight_clip, gp, instance_noise):
        """What the option types (checked where configs are built) cannot say, and their ranges
        again for a GAN built by code, so the train step never checks them."""
        sigma = float((instance_noise or {}).get("sigma", 0.0))
        if sigma < 0:
            raise GentoolError(f"model.instance_noise.sigma must be >= 0, got {sigma}; "
                               "set it to 0 to turn instance noise off.")
        if weight_clip is not None and weight_clip <= 0:
            raise GentoolError(f"model.weight_clip must be positive, got {weight_clip}; set it to "
                               "a positive bound such as 0.01 (the WGAN paper's value).")
        if conditional and not num_classes:
            raise GentoolError(f"model={name} is class-conditional but this data set has no "
                               "labels; use a labelled data set (digits, mnist, fashion_mnist, "
                               "cifar10, ring, grid) or model=gan / model=dcgan.")
        if weight_clip is not None and not loss.wasserstein:
            raise GentoolError(f"model.weight_clip only makes sense for the Wasserstein critic, not "
                               f"loss={loss.name}; use loss=wasserstein or drop model.weight_clip.")
        if weight_clip is not None and gp > 0:
            raise GentoolError("model.weight_clip and model.gradient_penalty are two ways to keep "
                               "the critic Lipschitz (WGAN vs WGAN-GP); set only one of them.")

    @staticmethod
    def _check_pack(pack, batch_size, conditional):
        if pack > 1 and conditional:
            raise GentoolError("model.pack packs samples of different classes into one input "
                               "of a class-conditional discriminator; use model.pack=1 with a "
                               "conditional model.")
        if pack > 1 and batch_size is not None and batch_size % pack:
            raise GentoolError(f"trainer.batch_size={batch_size} is not a multiple of "
                               f"model.pack={pack}; set trainer.batch_size to a multiple of "
                               f"{pack}.")

    def _packed(self, x):
        """x [B, *shape] -> [B / pack, pack * shape[0], *shape[1:]] (x itself when pack is 1)."""
        return x if self.pack == 1 else pack_samples(x, self.pack)

    # -- capabilities ------------------------------------------------------------------------
    def sample(self, n: int, labels=None, temperature: float = 1.0):
        """n samples from the EMA generator when there is one (the smoother weights)."""
        generator = self.generator_ema if self.ema_decay is not None else self.generator
        device = next(self.parameters()).device
        return generator(self.latent(n, device, temperature), self._labels_for(n, labels, device))

    def discriminate(self, x, labels=None) -> torch.Tensor:
        """The discriminator's raw score of x [N] (for pictures of its decision surface); a packed
        discriminator scores a pack of `pack` copies of each point."""
        labels = self._labels_for(x.shape[0], labels, x.device)
        return self.discriminator(self._packed(x.repeat_interleave(self.pack, dim=0)), labels)

    def _labels_for(self, n, labels, device):
        if self.num_classes is None:
            if labels is not None:
                raise GentoolError("labels= only applies to class-conditional models "
                                   "(model=cgan); this model is unconditional.")
            return None
        if labels is None:  # uniform over classes
            return torch.randint(self.num_classes, (n,), device=device)
        labels = torch.as_tensor(labels, device=device).long().reshape(-1)
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise GentoolError(f"labels must lie in 0..{self.num_classes - 1} for this model.")
        return labels

    # -- objective ---------------------------------------------------------------------------
    def _fake(self, n, labels, device, autocast=contextlib.nullcontext):
        z = self.latent(n, device)
        with autocast():
            return self.generator(z, labels).float()

    def _discriminator_loss(self, real, fake, labels, sigma, autocast=contextlib.nullcontext):
        # The penalties below act on what D sees: packs, when packing.
        real = self._packed(add_instance_noise(real, sigma))
        fake = self._packed(add_instance_noise(fake, sigma))

        def critic(x):
            with autocast():
                return self.discriminator(x, labels).float()

        real_score, fake_score = critic(real), critic(fake)
        loss = self.loss.discriminator_loss(real_score, fake_score)
        metrics = {"d_loss": loss.detach(), "d_real": self._readable(real_score),
                   "d_fake": self._readable(fake_score)}
        penalties = (("gradient_penalty", self.gp_weight,
                      lambda: gradient_penalty(critic, real, fake)),
                     ("r1_penalty", self.r1_weight / 2, lambda: r1_penalty(critic, real)),
                     ("r2_penalty", self.r2_weight / 2, lambda: r2_penalty(critic, fake)))
        for key, weight, penalty in penalties:
            if weight > 0:
                value = penalty()
                loss = loss + weight * value
                metrics[key] = value.detach()
        return loss, metrics

    def _readable(self, scores):
        """D(x) as a probability for the cross-entropy games, the raw critic score otherwise."""
        scores = scores.detach()
        return torch.sigmoid(scores).mean() if isinstance(self.loss, Minimax) else scores.mean()

    def _unrolled_generator_loss(self, real, fake, labels):
        """L_G through k differentiable SGD steps of D on (real, fake), taken functionally so the
        gradient reaches the generator through every unrolled update (create_graph=True)."""
        params = {n: p.detach().requires_grad_() for n, p in
                  self.discriminator.named_parameters()}
        # Copies: BatchNorm statistics and spectral-norm vectors must not move during the unroll.
        buffers = {n: b.clone() for n, b in self.discriminator.named_buffers()}

        def critic(x, theta):
            return functional_call(self.discriminator, {**theta, **buffers}, (x, labels)).float()

        real, fake = self._packed(real), self._packed(fake)

        for _ in range(self.unrolled_steps):
            d_loss = self.loss.discriminator_loss(critic(real, params), critic(fake, params))
            grads = torch.autograd.grad(d_loss, list(params.values()), create_graph=True)
            params = {n: p - self.unrolled_lr * g for (n, p), g in zip(params.items(), grads)}
        return self.loss.generator_loss(critic(fake, params))

    def train_step(self, batch, ctx):
        steps = batch if self.n_critic > 1 else [batch]   # n_critic batches arrive as a list
        reals = [x for x, _ in steps]
        labels = [y if self.num_classes else None for _, y in steps]
        if any(real.shape[0] % self.pack for real in reals):
            raise GentoolError(f"a batch of {reals[0].shape[0]} examples cannot be cut into "
                               f"packs of model.pack={self.pack}; set trainer.batch_size "
                               f"(per process) to a multiple of {self.pack}.")
        sigma = instance_noise_sigma(ctx.step, self.noise_sigma0, self.noise_anneal_steps)
        metrics: dict[str, torch.Tensor] = {}
        for real, label in zip(reals, labels):
            with torch.no_grad():
                fake = self._fake(real.shape[0], label, real.device, ctx.autocast)
            d_loss, metrics = self._discriminator_loss(real, fake, label, sigma, ctx.autocast)
            metrics.update(ctx.optimizer_step(d_loss, "discriminator"))
            if self.weight_clip is not None:
                clip_weights(self.discriminator, self.weight_clip)

        # The generator step must not leave gradients in D (they would leak into D's next step).
        self.discriminator.requires_grad_(False)
        real, label = reals[-1], labels[-1]
        fake = self._fake(real.shape[0], label, real.device, ctx.autocast)
        if self.unrolled_steps:
            g_loss = self._unrolled_generator_loss(real, fake, label)
        else:
            with ctx.autocast():
                score = self.discriminator(self._packed(add_instance_noise(fake, sigma)),
                                           label).float()
            g_loss = self.loss.generator_loss(score)
        metrics.update(ctx.optimizer_step(g_loss, "generator"))
        self.discriminator.requires_grad_(True)
        self._update_ema()
        metrics["g_loss"] = g_loss.detach()
        if sigma > 0:
            metrics["instance_noise_sigma"] = torch.tensor(sigma)
        return metrics

    @torch.no_grad()
    def _update_ema(self):
        """ema <- d * ema + (1 - d) * weights, with d = min(decay, (1 + n) / (10 + n)) after n
        updates: without the warm-up, a 0.999 average still holds 13% of the untrained initial
        weights after 2,000 steps (the form of TensorFlow's ExponentialMovingAverage)."""
        if self.ema_decay is None:
            return
        if self._ema_count is None:
            self._ema_count = int(self.ema_updates)
        n = self._ema_count
        decay = min(self.ema_decay, (1 + n) / (10 + n))
        self._ema_count += 1
        self.ema_updates += 1
        ema_params = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.generator.parameters()), 1 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    @staticmethod
    def _forget_ema_count(module, incompatible_keys) -> None:
        """After load_state_dict: the loaded `ema_updates` is the count; re-read it once."""
        module._ema_count = None

    @torch.no_grad()
    def eval_step(self, batch):
        """The discriminator's view of test data against generated data (no updates)."""
        x, y = batch
        label = y if (y is not None and self.num_classes) else None
        if self.pack > 1:  # whole packs: the batch cycled up to a multiple of pack
            x = x[torch.arange(max(1, x.shape[0] // self.pack) * self.pack,
                               device=x.device) % x.shape[0]]
        fake = self.sample(x.shape[0], labels=label)
        real_score = self.discriminator(self._packed(x), label).float()
        fake_score = self.discriminator(self._packed(fake), label).float()
        return {"d_loss": self.loss.discriminator_loss(real_score, fake_score),
                "g_loss": self.loss.generator_loss(fake_score),
                "d_real": self._readable(real_score), "d_fake": self._readable(fake_score)}


def pack_samples(x: torch.Tensor, m: int) -> torch.Tensor:
    """PacGAN's packing: m consecutive samples side by side as one input of the discriminator,

        x [B, d] -> [B / m, m d],   x [B, C, H, W] -> [B / m, m C, H, W],

    pack k holding samples k m, ..., k m + m - 1 in that order. B must be a multiple of m.
    """
    return x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])
