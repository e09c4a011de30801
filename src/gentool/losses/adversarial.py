"""Adversarial losses: the two players' objectives, written on the discriminator's raw outputs.

Every object takes the discriminator's logits (or a critic's unbounded scores) for a batch of real
and a batch of generated examples, each of shape [B], and returns scalars to MINIMISE: one for the
discriminator step and one for the generator step. No sigmoid is applied before these are called;
where a loss needs D = sigmoid(logit) it uses the softplus identities

    log sigmoid(x)     = -softplus(-x)
    log(1 - sigmoid(x)) = -softplus(x)

which stay finite for any logit, whereas log(sigmoid(x)) underflows to log(0) = -inf once the
discriminator is confident (|x| of a few tens in float32).

Inputs are cast to float32: under bf16 autocast the discriminator hands back bf16 scores, and the
means and softplus below lose too much precision there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class AdversarialLoss:
    """The objectives of a two-player game between a generator G and a discriminator D."""

    name = "adversarial"
    # Weight clipping (the original WGAN's Lipschitz constraint) only makes sense for a critic
    # trained on the Wasserstein objective; methods read this to refuse it elsewhere.
    wasserstein = False

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Scalar the discriminator minimises, from its outputs on real and generated data [B]."""
        raise NotImplementedError

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """Scalar the generator minimises, from the discriminator's outputs on its samples [B]."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Minimax(AdversarialLoss):
    """The original saturating game (Goodfellow et al. 2014), with D = sigmoid(logit):

        L_D = -0.5 E_x log D(x) - 0.5 E_z log(1 - D(G(z)))
            =  0.5 mean(softplus(-r)) + 0.5 mean(softplus(f))
        L_G = -(fake part of L_D) = 0.5 E_z log(1 - D(G(z))) = -0.5 mean(softplus(f))

    The 0.5 factors make L_D the binary cross-entropy of a balanced real/fake batch, so its optimum
    at D = 1/2 everywhere is log 2. L_G saturates: dL_G/df = -0.5 sigmoid(f), which vanishes when D
    confidently rejects the samples (f << 0), i.e. early in training when G most needs a signal.
    """

    name = "minimax"

    def discriminator_loss(self, real, fake):
        real, fake = real.float(), fake.float()
        return 0.5 * F.softplus(-real).mean() + 0.5 * F.softplus(fake).mean()

    def generator_loss(self, fake):
        return -0.5 * F.softplus(fake.float()).mean()


class NonSaturating(Minimax):
    """The same discriminator; the generator maximises log D(G(z)) instead (Goodfellow 2014):

        L_G = -0.5 E_z log D(G(z)) = 0.5 mean(softplus(-f))

    Same fixed point as the minimax game, but dL_G/df = -0.5 (1 - sigmoid(f)) is about -0.5 exactly
    where the minimax gradient vanishes (D confidently rejecting the samples).
    """

    name = "nonsaturating"

    def generator_loss(self, fake):
        return 0.5 * F.softplus(-fake.float()).mean()


class Wasserstein(AdversarialLoss):
    """WGAN (Arjovsky et al. 2017): the critic estimates W1(p_data, p_G) by its dual form,

        L_D = mean(f) - mean(r)      (minimising it maximises E D(x) - E D(G(z)))
        L_G = -mean(f)

    The estimate is only meaningful for a 1-Lipschitz critic: pair it with weight clipping
    (original WGAN) or a gradient penalty (WGAN-GP), see `gentool.losses.penalties`.
    """

    name = "wasserstein"
    wasserstein = True

    def discriminator_loss(self, real, fake):
        return fake.float().mean() - real.float().mean()

    def generator_loss(self, fake):
        return -fake.float().mean()


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, SNGAN; BigGAN):

        L_D = mean(relu(1 - r)) + mean(relu(1 + f))
        L_G = -mean(f)

    The margin stops the discriminator from pushing scores of examples it already separates by 1.
    """

    name = "hinge"

    def discriminator_loss(self, real, fake):
        return F.relu(1.0 - real.float()).mean() + F.relu(1.0 + fake.float()).mean()

    def generator_loss(self, fake):
        return -fake.float().mean()


class LeastSquares(AdversarialLoss):
    """LSGAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1 (what G wants D to say):

        L_D = 0.5 mean((r - 1)^2) + 0.5 mean(f^2)
        L_G = 0.5 mean((f - 1)^2)

    The quadratic keeps penalising samples on the right side of the decision boundary but far from
    the data, so G's gradient does not vanish the way the minimax one does.
    """

    name = "least_squares"

    def discriminator_loss(self, real, fake):
        real, fake = real.float(), fake.float()
        return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake ** 2).mean()

    def generator_loss(self, fake):
        return 0.5 * ((fake.float() - 1.0) ** 2).mean()
