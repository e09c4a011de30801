"""GANs: every model x loss x switch trains a few steps; nonsense combinations are clear errors;
the unrolled generator gradient and the EMA against hand computations."""

import json
import math

import pytest
import torch
from torch import nn

from conftest import TINY, data_overrides
from gentool.engine.checkpoint import load_checkpoint
from gentool.engine.step import StepContext
from gentool.errors import GentoolError
from gentool.data.toy2d import ring_centres
from gentool.losses.adversarial import Minimax, NonSaturating, Wasserstein
from gentool.methods import build_method
from gentool.methods.gan import GAN
from gentool.train import run_train

LOSSES = ["minimax", "nonsaturating", "wasserstein", "hinge", "least_squares"]
SWITCHES = {
    "plain": [],
    "n_critic": ["model.n_critic=2"],
    "wgan_clip": ["loss=wasserstein", "model.weight_clip=0.01"],
    "wgan_gp": ["loss=wasserstein", "model.gradient_penalty=10"],
    "r1_r2": ["model.r1=1", "model.r2=1"],
    "instance_noise": ["model.instance_noise.sigma=0.1", "model.instance_noise.anneal_steps=4"],
    "unrolled": ["model.unrolled_steps=2"],
    "minibatch_discrimination": ["model.discriminator.minibatch_discrimination={num_kernels:8,kernel_dim:3}"],
    "minibatch_std": ["model.discriminator.minibatch_std=true"],
    "spectral_norm": ["model.discriminator.spectral_norm=true"],
    "no_ema": ["model.ema.enabled=false"],
    "latent_mixture": ["model.latent_mixture.components=5", "model.latent_mixture.sigma=0.2"],
    "pack": ["model.pack=2", "model.r1=1", "model.discriminator.minibatch_std=true"],
    "pack_unrolled_gp": ["model.pack=4", "model.unrolled_steps=1", "loss=wasserstein",
                         "model.gradient_penalty=10"],
    "everything": ["model.r1=1", "model.instance_noise.sigma=0.1", "model.unrolled_steps=1",
                   "model.discriminator.minibatch_std=true", "model.discriminator.spectral_norm=true"],
}


def train(compose_train, path, *overrides):
    """Train TINY's 6 steps; checks what every GAN run must do and returns the test metrics."""
    run_train(compose_train(*TINY, *overrides), path)
    metrics = json.loads((path / "metrics.json").read_text())
    assert_both_players_learned(path)
    # reverse_kl and spread are NaN by definition while no sample is of high quality
    # (metrics/modes.py), written as null
    assert all(math.isfinite(v) for k, v in metrics.items()
               if not k.endswith(("reverse_kl", "spread"))), \
        metrics
    return metrics


def assert_both_players_learned(path):
    """Between the checkpoints of steps 3 and 6 every parameter tensor of G and of D moved, and
    nothing became non-finite."""
    early = load_checkpoint(path / "checkpoints/step_3.pt")["modules"]["method"]
    late = load_checkpoint(path / "checkpoints/last.pt")["modules"]["method"]
    assert load_checkpoint(path / "checkpoints/last.pt")["step"] == 6
    for player in ("generator.", "discriminator."):
        weights = [k for k in late if k.startswith(player) and late[k].is_floating_point()
                   and "running_" not in k]
        assert weights, player
        assert all(torch.isfinite(late[k]).all() for k in weights), player
        moved = [k for k in weights if not torch.equal(early[k], late[k])]
        assert moved, f"no weight of the {player[:-1]} changed"


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_mlp_gan_trains_with_every_loss_on_the_toy_sets(compose_train, tmp_path, loss, dataset):
    metrics = train(compose_train, tmp_path, "model=gan", f"loss={loss}", f"dataset={dataset}")
    assert {"test/modes", "test/high_quality", "test/reverse_kl", "test/d_loss"} <= set(metrics)


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_every_stabiliser_trains(compose_train, tmp_path, switch):
    metrics = train(compose_train, tmp_path, "model=gan", "dataset=ring", *SWITCHES[switch])
    assert {"test/modes", "test/high_quality", "test/d_loss", "test/g_loss"} <= set(metrics)


@pytest.mark.parametrize("model", ["dcgan", "cgan"])
@pytest.mark.parametrize("kind", ["digits", "mnist", "cifar10"])
def test_convolutional_gans_train_on_every_image_size(compose_train, data_root, tmp_path, model,
                                                      kind):
    metrics = train(compose_train, tmp_path, f"model={model}", "dataset.range=[-1,1]",
                    "model.generator.channels=8", "model.discriminator.channels=8",
                    *data_overrides(kind, data_root))
    assert set(metrics) >= {"test/d_loss", "test/g_loss", "test/d_real", "test/d_fake"}


def test_packed_dcgan_trains_and_samples(compose_train, data_root, tmp_path):
    metrics = train(compose_train, tmp_path, "model=dcgan", "dataset.range=[-1,1]",
                    "model.pack=2", "model.generator.channels=8",
                    "model.discriminator.channels=8", *data_overrides("mnist", data_root))
    assert set(metrics) >= {"test/d_loss", "test/g_loss", "test/d_real", "test/d_fake"}


def test_dcgan_on_64x64_colour_folder_with_wgan_gp(compose_train, data_root, tmp_path):
    train(compose_train, tmp_path, "model=dcgan", "dataset.range=[-1,1]", "loss=wasserstein",
          "model.gradient_penalty=10", "model.discriminator.batch_norm=false",
          "model.generator.channels=8", "model.discriminator.channels=8",
          *data_overrides("folder", data_root))


def test_conditional_mlp_gan_on_ring(compose_train, tmp_path):
    train(compose_train, tmp_path, "model=gan", "model.conditional=true", "dataset=ring")


@pytest.mark.parametrize("overrides,message", [
    (["model=gan", "dataset=ring", "model.weight_clip=0.01"],
     "weight_clip only makes sense for the Wasserstein critic"),
    (["model=gan", "dataset=ring", "loss=wasserstein", "model.weight_clip=0.01",
      "model.gradient_penalty=10"], "set only one of them"),
    (["model=cgan", "dataset=frey_faces"], "has no labels"),
    (["model=gan", "dataset=ring", "loss=bernoulli"], "loss=bernoulli does not fit model=gan"),
    (["model=vae", "loss=hinge"], "loss=hinge does not fit model=vae"),
    (["model=gan", "dataset=ring", "model.n_critic=0"], "model.n_critic is 0 but must be an integer >= 1"),
    (["model=gan", "dataset=ring", "model.pack=3"],
     r"trainer.batch_size=16 is not a multiple of model.pack=3; set trainer.batch_size to a "
     r"multiple of 3\."),
    (["model=gan", "dataset=ring", "model.pack=0"], "model.pack is 0 but must be an integer >= 1"),
    (["model=cgan", "dataset=digits", "model.pack=2"], "use model.pack=1 with a conditional"),
    (["model=gan", "dataset=ring", "model.latent_mixture.components=-1"],
     "model.latent_mixture.components is -1 but must be an integer >= 0"),
    (["model=gan", "dataset=ring", "model.latent_mixture.components=4",
      "model.latent_mixture.sigma=0"], "model.latent_mixture.sigma is 0"),
])
def test_combinations_that_make_no_sense_are_clear_errors(compose_train, data_root, tmp_path,
                                                          overrides, message):
    with pytest.raises(GentoolError, match=message):
        run_train(compose_train(*TINY, *overrides, f"data_dir={data_root}"), tmp_path)


def test_resume_is_exact_with_several_critic_steps(compose_train, tmp_path):
    args = [*TINY, "model=gan", "dataset=ring", "model.n_critic=2", "trainer.max_steps=8",
            "trainer.checkpoint_every=4", "model.instance_noise.sigma=0.1",
            "model.instance_noise.anneal_steps=6"]
    run_train(compose_train(*args), tmp_path / "full")
    run_train(compose_train(*args, f"resume={tmp_path}/full/checkpoints/step_4.pt"),
              tmp_path / "resumed")
    full = load_checkpoint(tmp_path / "full/checkpoints/last.pt")["modules"]["method"]
    resumed = load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["modules"]["method"]
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


# -- hand computations on a one-parameter generator and discriminator ------------------------

class ScaleGenerator(nn.Module):
    """G(z) = a * z, one parameter."""

    def __init__(self, latent_dim, data_shape, value_range=None, num_classes=None):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.7))

    def forward(self, z, labels=None):
        return self.a * z


class LinearCritic(nn.Module):
    """D(x) = w * x, one parameter."""

    def __init__(self, data_shape, num_classes=None):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, labels=None):
        return (self.w * x).squeeze(1)


def step_context(method, optimizer) -> StepContext:
    """The engine's context for train steps outside `fit`: fp32, no clipping, one process."""
    return StepContext(method.configure_optimizers(optimizer))


def at(ctx: StepContext, step: int) -> StepContext:
    ctx.step = step
    return ctx


def tiny_gan(**options):
    return GAN(ScaleGenerator, LinearCritic, options.pop("loss", Wasserstein()), data_shape=[1],
               value_range=[-1, 1], latent_dim=1, ema={"enabled": False}, **options)


def test_unrolled_generator_gradient_matches_a_manual_two_step_computation():
    """Wasserstein critic D = w x, generator G = a z, two SGD steps of size eta on
    L_D = mean(D(fake)) - mean(D(real)), whose gradient in w is m_f - m_r (m: batch means):
        w2 = w - 2 eta (a m_z - m_r),   L_G = -w2 a m_z
        dL_G/da = -w m_z + 4 eta a m_z^2 - 2 eta m_r m_z
    A detached copy of D would give only -w2 m_z."""
    eta = 0.1
    gan = tiny_gan(unrolled_steps=2, unrolled_lr=eta)
    z = torch.tensor([[0.5], [1.5], [-0.2]])
    real = torch.tensor([[1.0], [2.0], [0.4]])
    fake = gan.generator(z)
    loss = gan._unrolled_generator_loss(real, fake, None)
    (grad_a,) = torch.autograd.grad(loss, [gan.generator.a])
    a, w = 0.7, 0.3
    m_z, m_r = z.mean().item(), real.mean().item()
    w2 = w - 2 * eta * (a * m_z - m_r)
    assert loss.item() == pytest.approx(-w2 * a * m_z, rel=1e-6)
    assert grad_a.item() == pytest.approx(-w * m_z + 4 * eta * a * m_z ** 2 - 2 * eta * m_r * m_z,
                                          rel=1e-5)
    assert grad_a.item() != pytest.approx(-w2 * m_z, rel=1e-3)
    assert gan.discriminator.w.item() == torch.tensor(0.3).item()  # the real D did not move


def train_toy_gan(compose_train, steps, *overrides):
    """`steps` train steps of a small toy GAN (batch norm in G) on ring-like points, with the
    same initial weights, data and noise on every call; returns its state dict."""
    cfg = compose_train("model=gan", "dataset=ring", "model.latent_dim=4",
                        "model.generator.hidden=[32,32]", "model.generator.batch_norm=true",
                        "model.discriminator.hidden=[32,32]", *overrides)
    torch.manual_seed(0)
    gan = build_method(cfg)
    ctx = step_context(gan, cfg.optimizer)
    centres = ring_centres()
    for step in range(steps):
        modes = torch.randint(len(centres), (64,))
        real = centres[modes] + 0.05 * torch.randn(64, 2)
        gan.train_step((real, None), at(ctx, step))
    return gan.state_dict()


def test_one_unrolled_step_of_size_1e_12_trains_bit_for_bit_as_the_plain_gan(compose_train):
    """One unrolled D step of 1e-12 is below float32 resolution, so the unrolled generator loss
    is the plain one and 50 steps end with bitwise equal weights and buffers of G, D and the EMA.
    An unrolled step of 1e-1 ends elsewhere: the comparison does see the unrolled path."""
    plain = train_toy_gan(compose_train, 50)
    unrolled = train_toy_gan(compose_train, 50, "model.unrolled_steps=1",
                             "model.unrolled_lr=1e-12")
    assert plain.keys() == unrolled.keys()
    for name in plain:
        assert torch.equal(plain[name], unrolled[name]), name
    moved = train_toy_gan(compose_train, 50, "model.unrolled_steps=1", "model.unrolled_lr=1e-1")
    assert not all(torch.equal(plain[name], moved[name]) for name in plain)


def test_generator_step_leaves_no_gradient_in_the_discriminator():
    gan = tiny_gan(loss=NonSaturating())
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": 0.1})
    gan.train_step((torch.randn(4, 1), None), ctx)
    assert gan.discriminator.w.grad is None and gan.generator.a.grad is None


@pytest.mark.parametrize("loss", [Minimax(), NonSaturating()])
def test_generator_gradient_norm_is_reported_on_logging_steps_only(loss):
    """G = a z, D = w x: the generator's loss is -0.5 mean softplus(f) (minimax) or
    0.5 mean softplus(-f) (non-saturating) of f = w a z, so dL_G/da is
    -0.5 mean(sigmoid(f) w z) or -0.5 mean(sigmoid(-f) w z): the number the study of the
    saturating game (scripts/gan_study.py) reads as `grad_norm/generator`."""
    gan = tiny_gan(loss=loss)
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": 0.0})
    real = torch.randn(4, 1)
    assert "grad_norm/generator" not in gan.train_step((real, None), at(ctx, 0))
    ctx.diagnostics = True
    torch.manual_seed(5)
    metrics = gan.train_step((real, None), at(ctx, 1))
    torch.manual_seed(5)
    torch.randn(4, 1)                    # the noise of the discriminator's step
    z = torch.randn(4, 1)                # the generator step's
    a, w = 0.7, 0.3
    f = w * a * z
    gate = torch.sigmoid(f) if type(loss) is Minimax else torch.sigmoid(-f)
    assert metrics["grad_norm/generator"].item() == pytest.approx(
        abs((-0.5 * gate * w * z).mean().item()), rel=1e-5)
    assert "grad_norm/discriminator" in metrics


def test_ema_is_the_exponential_moving_average_of_the_generator_weights():
    """With warm-up: decay min(0.95, (1 + n) / (10 + n)) = 0.1, 0.18.., 0.25, ... until 0.95."""
    gan = GAN(ScaleGenerator, LinearCritic, NonSaturating(), data_shape=[1], value_range=[-1, 1],
              latent_dim=1, ema={"enabled": True, "decay": 0.95})
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": 0.5})
    ema = 0.7
    for n in range(200):
        gan.train_step((torch.randn(4, 1), None), at(ctx, n))
        decay = min(0.95, (1 + n) / (10 + n))
        ema = decay * ema + (1 - decay) * gan.generator.a.item()
    assert gan.generator_ema.a.item() == pytest.approx(ema, rel=1e-5)
    assert int(gan.ema_updates) == 200
    assert gan.generator.a.item() != pytest.approx(ema)


def test_ema_count_continues_from_a_loaded_state():
    """The decay's warm-up counts updates on the host; loading a state dict re-reads the count."""
    trained = GAN(ScaleGenerator, LinearCritic, NonSaturating(), data_shape=[1],
                  value_range=[-1, 1], latent_dim=1, ema={"enabled": True, "decay": 0.95})
    trained_ctx = step_context(trained, {"_target_": "torch.optim.SGD", "lr": 0.5})
    for n in range(3):
        trained.train_step((torch.randn(4, 1), None), at(trained_ctx, n))
    fresh = GAN(ScaleGenerator, LinearCritic, NonSaturating(), data_shape=[1],
                value_range=[-1, 1], latent_dim=1, ema={"enabled": True, "decay": 0.95})
    ctx = step_context(fresh, {"_target_": "torch.optim.SGD", "lr": 0.5})
    fresh.train_step((torch.randn(4, 1), None), at(ctx, 0))  # its host count is now 1
    fresh.load_state_dict(trained.state_dict())
    ema_before = fresh.generator_ema.a.item()
    fresh.train_step((torch.randn(4, 1), None), at(ctx, 3))
    decay = (1 + 3) / (10 + 3)                               # n = 3, as loaded
    assert fresh.generator_ema.a.item() == pytest.approx(
        decay * ema_before + (1 - decay) * fresh.generator.a.item(), rel=1e-6)
    assert int(fresh.ema_updates) == 4


# -- penalty weights -------------------------------------------------------------------------

class QuadraticCritic(nn.Module):
    """D(x) = w * x^2 (one feature), one parameter: its input gradient 2 w x varies with x."""

    def __init__(self, data_shape, num_classes=None):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, labels=None):
        return (self.w * x * x).squeeze(1)


def quadratic_gan(loss, **options):
    return GAN(ScaleGenerator, QuadraticCritic, loss, data_shape=[1], value_range=[-1, 1],
               latent_dim=1, ema={"enabled": False}, **options)


REAL = [1.0, -2.0, 0.5]
FAKE = [0.2, 1.5, -1.0]


def _column(values):
    return torch.tensor(values).view(-1, 1)


def _gp_by_hand(real, fake, eps, w=0.3, lam=None):
    """E (||grad D(x_hat)|| - 1)^2 at x_hat = eps r + (1 - eps) f; grad D(x) = 2 w x."""
    x_hat = [e * r + (1 - e) * f for e, r, f in zip(eps, real, fake)]
    return sum((abs(2 * w * x) - 1) ** 2 for x in x_hat) / len(x_hat)


def test_wgan_gp_discriminator_loss_adds_lambda_times_the_gradient_penalty_by_hand():
    """L_D = mean(D(f)) - mean(D(r)) + lambda E(||grad D(x_hat)|| - 1)^2, lambda = 10."""
    gan = quadratic_gan(Wasserstein(), gradient_penalty=10.0)
    torch.manual_seed(3)
    loss, metrics = gan._discriminator_loss(_column(REAL), _column(FAKE), None, 0.0)
    torch.manual_seed(3)
    eps = torch.rand(3, 1).flatten().tolist()       # the penalty's one eps per example
    w = 0.3
    d_loss = w * sum(f * f for f in FAKE) / 3 - w * sum(r * r for r in REAL) / 3
    gp = _gp_by_hand(REAL, FAKE, eps)
    assert metrics["d_loss"].item() == pytest.approx(d_loss, rel=1e-6)
    assert metrics["gradient_penalty"].item() == pytest.approx(gp, rel=1e-6)
    assert loss.item() == pytest.approx(d_loss + 10.0 * gp, rel=1e-6)
    assert "r1_penalty" not in metrics and "r2_penalty" not in metrics


def test_r1_on_real_and_r2_on_generated_data_enter_with_gamma_over_2_by_hand():
    """gamma_1 = 1, gamma_2 = 3: L_D = L_NS + 0.5 E||grad D(r)||^2 + 1.5 E||grad D(f)||^2, with
    ||grad D(x)||^2 = (2 w x)^2 and L_NS = 0.5 mean softplus(-D(r)) + 0.5 mean softplus(D(f))."""
    gan = quadratic_gan(NonSaturating(), r1=1.0, r2=3.0)
    loss, metrics = gan._discriminator_loss(_column(REAL), _column(FAKE), None, 0.0)
    w = 0.3
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    d_loss = (0.5 * sum(sp(-w * r * r) for r in REAL) / 3
              + 0.5 * sum(sp(w * f * f) for f in FAKE) / 3)
    r1 = sum((2 * w * r) ** 2 for r in REAL) / 3        # 0.36 * (1 + 4 + 0.25) / 3 = 0.63
    r2 = sum((2 * w * f) ** 2 for f in FAKE) / 3        # 0.36 * (0.04 + 2.25 + 1) / 3 = 0.3948
    assert (r1, r2) == (pytest.approx(0.63), pytest.approx(0.3948))
    assert metrics["d_loss"].item() == pytest.approx(d_loss, rel=1e-6)
    assert metrics["r1_penalty"].item() == pytest.approx(r1, rel=1e-6)
    assert metrics["r2_penalty"].item() == pytest.approx(r2, rel=1e-6)
    assert loss.item() == pytest.approx(d_loss + 0.5 * r1 + 1.5 * r2, rel=1e-6)
    assert "gradient_penalty" not in metrics


def test_each_stabiliser_logs_its_value_from_the_train_step():
    """G = 0.7 z with z the step's first draw, D = 0.3 x^2, SGD with lr 0 (nothing moves)."""
    real, w, a = _column(REAL), 0.3, 0.7
    gp_gan = quadratic_gan(Wasserstein(), gradient_penalty=10.0)
    ctx = step_context(gp_gan, {"_target_": "torch.optim.SGD", "lr": 0.0})
    torch.manual_seed(8)
    metrics = gp_gan.train_step((real, None), ctx)
    torch.manual_seed(8)
    fake = (a * torch.randn(3, 1)).flatten().tolist()   # the critic step's generated batch
    eps = torch.rand(3, 1).flatten().tolist()           # then the penalty's eps
    assert metrics["gradient_penalty"].item() == pytest.approx(_gp_by_hand(REAL, fake, eps),
                                                               rel=1e-5)

    r_gan = quadratic_gan(NonSaturating(), r1=1.0, r2=3.0)
    ctx = step_context(r_gan, {"_target_": "torch.optim.SGD", "lr": 0.0})
    torch.manual_seed(9)
    metrics = r_gan.train_step((real, None), ctx)
    torch.manual_seed(9)
    fake = (a * torch.randn(3, 1)).flatten().tolist()
    assert metrics["r1_penalty"].item() == pytest.approx(0.63, rel=1e-5)
    assert metrics["r2_penalty"].item() == pytest.approx(
        sum((2 * w * f) ** 2 for f in fake) / 3, rel=1e-5)

    # Instance noise sigma0 = 0.4 annealed over 4 steps: 0.4 * (1 - 1/4) = 0.3 at step 1.
    noisy = quadratic_gan(NonSaturating(), instance_noise={"sigma": 0.4, "anneal_steps": 4})
    ctx = step_context(noisy, {"_target_": "torch.optim.SGD", "lr": 0.0})
    metrics = noisy.train_step((real, None), at(ctx, 1))
    assert metrics["instance_noise_sigma"].item() == pytest.approx(0.3)
    assert "instance_noise_sigma" not in noisy.train_step((real, None), at(ctx, 4))


# -- packing (PacGAN) ------------------------------------------------------------------------

class RecordingCritic(nn.Module):
    """D(x) = w * sum of x's entries, recording every input it is given."""

    def __init__(self, data_shape, num_classes=None):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.w = nn.Parameter(torch.tensor(0.3))
        self.seen = []

    def forward(self, x, labels=None):
        self.seen.append(x.detach().clone())
        return self.w * x.flatten(1).sum(1)


class OffsetGenerator(ScaleGenerator):
    """G(z) = a * z + 1000: generated values are far from the data (all within [-1, 1])."""

    def forward(self, z, labels=None):
        return self.a * z + 1000.0


def packed_gan(m, **options):
    return GAN(options.pop("generator", ScaleGenerator), RecordingCritic,
               options.pop("loss", NonSaturating()), data_shape=options.pop("shape", [1]),
               value_range=[-1, 1], latent_dim=1, ema={"enabled": False}, pack=m, **options)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_packed_discriminator_shapes(m):
    from gentool.nets.dcgan import DCGANDiscriminator
    from gentool.nets.gan_mlp import MLPDiscriminator
    from gentool.methods.gan import pack_samples

    x = torch.randn(12, 2)
    packed = pack_samples(x, m)
    assert packed.shape == (12 // m, 2 * m)
    assert torch.equal(packed[1], torch.cat(list(x[m:2 * m])))   # pack 1: samples m..2m-1
    gan = packed_gan(m, shape=[2])
    assert gan.discriminator.data_shape == (2 * m,)
    mlp = GAN(ScaleGenerator, MLPDiscriminator, NonSaturating(), data_shape=[2],
              value_range=[-1, 1], latent_dim=1, pack=m)
    assert mlp.discriminator.body[0].in_features == 2 * m
    assert mlp.discriminate(torch.randn(5, 2)).shape == (5,)      # m copies of each point
    images = torch.randn(2 * m, 1, 8, 8)
    assert pack_samples(images, m).shape == (2, m, 8, 8)
    assert torch.equal(pack_samples(images, m)[1, 0], images[m, 0])
    conv = DCGANDiscriminator((m * 1, 8, 8), channels=4, max_channels=8)
    assert conv(pack_samples(images, m)).shape == (2,)


@pytest.mark.parametrize("m", [2, 4])
def test_a_packed_discriminator_sees_m_samples_of_one_kind(m):
    gan = packed_gan(m, generator=OffsetGenerator)
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": 0.0})
    real = torch.rand(8, 1) * 2 - 1
    gan.train_step((real, None), ctx)
    d_real, d_fake, g_fake = gan.discriminator.seen
    assert torch.equal(d_real, real.view(8 // m, m))              # m consecutive reals per pack
    for packs in (d_fake, g_fake):                                # the D and the G step
        assert packs.shape == (8 // m, m) and bool((packs > 900).all())


def test_packed_losses_by_hand():
    """m = 2, D(pack) = w (x1 + x2) with w = 0.3; reals 1, 2, 3, 4 -> packs (1,2), (3,4),
    scores 0.9, 2.1; fakes -1, 1, 0, 2 -> packs scores 0, 0.6.
        L_D = 0.5 mean(softplus(-[0.9, 2.1])) + 0.5 mean(softplus([0, 0.6]))
        R1 per pack = ||grad_pack D||^2 = 2 w^2 (each of the 2 entries has gradient w)."""
    import math

    gan = packed_gan(2, r1=1.0)
    real = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    fake = torch.tensor([[-1.0], [1.0], [0.0], [2.0]])
    loss, metrics = gan._discriminator_loss(real, fake, None, 0.0)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    d_loss = 0.25 * (sp(-0.9) + sp(-2.1)) + 0.25 * (sp(0.0) + sp(0.6))
    assert metrics["d_loss"].item() == pytest.approx(d_loss, rel=1e-6)
    assert metrics["r1_penalty"].item() == pytest.approx(2 * 0.3 ** 2, rel=1e-6)
    assert loss.item() == pytest.approx(d_loss + 0.5 * 2 * 0.3 ** 2, rel=1e-6)
    assert gan.loss.generator_loss(gan.discriminator(gan._packed(fake))).item() == \
        pytest.approx(0.25 * (sp(-0.0) + sp(-0.6)), rel=1e-6)


class FixedGenerator(nn.Module):
    """G(z) = a * [-1, 1, 0, 2][:n]: the latent draw is ignored, so a train step is computable by
    hand."""

    def __init__(self, latent_dim, data_shape, value_range=None, num_classes=None):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.5))

    def forward(self, z, labels=None):
        return self.a * torch.tensor([[-1.0], [1.0], [0.0], [2.0]])[:z.shape[0]]


def test_a_packed_train_step_by_hand():
    """m = 2, D(pack) = w (x1 + x2), G = a [-1, 1, 0, 2], one SGD step of size eta per player.
    Reals 1, 2, 3, 4 -> pack sums r = 3, 7; fakes -> pack sums a f with f = 0, 2. Per pack:
        L_D = 0.5 mean softplus(-w r) + 0.5 mean softplus(w a f)
        dL_D/dw = 0.5 mean(-r sigmoid(-w r)) + 0.5 mean(a f sigmoid(w a f)),  w1 = w - eta dL_D/dw
        L_G = 0.5 mean softplus(-w1 a f),   dL_G/da = 0.5 mean(-w1 f sigmoid(-w1 a f))
    The generator's loss is taken on packs of fakes, through the discriminator just updated."""
    eta, w, a = 0.1, 0.3, 0.5
    gan = packed_gan(2, generator=FixedGenerator)
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": eta})
    metrics = gan.train_step((torch.tensor([[1.0], [2.0], [3.0], [4.0]]), None), ctx)

    sp = lambda v: math.log1p(math.exp(v))                     # noqa: E731
    sig = lambda v: 1 / (1 + math.exp(-v))                     # noqa: E731
    r, f = (3.0, 7.0), (0.0, 2.0)
    d_loss = 0.25 * sum(sp(-w * v) for v in r) + 0.25 * sum(sp(w * a * v) for v in f)
    dw = 0.25 * sum(-v * sig(-w * v) for v in r) + 0.25 * sum(a * v * sig(w * a * v) for v in f)
    w1 = w - eta * dw
    g_loss = 0.25 * sum(sp(-w1 * a * v) for v in f)
    da = 0.25 * sum(-w1 * v * sig(-w1 * a * v) for v in f)
    assert metrics["d_loss"].item() == pytest.approx(d_loss, rel=1e-6)
    assert gan.discriminator.w.item() == pytest.approx(w1, rel=1e-6)
    assert metrics["g_loss"].item() == pytest.approx(g_loss, rel=1e-6)
    assert gan.generator.a.item() == pytest.approx(a - eta * da, rel=1e-6)
    d_real, d_fake, g_fake = gan.discriminator.seen
    assert torch.equal(d_real, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert torch.equal(d_fake, torch.tensor([[-0.5, 0.5], [0.0, 1.0]]))


@pytest.mark.parametrize("m", [2, 3])
def test_every_packed_discriminator_input_holds_one_kind(m):
    """With several critic steps, the unrolled generator loss, evaluation and the picture of the
    decision surface: every input of D is a pack of m reals, m fakes or m copies of one point."""
    real = torch.rand(6, 1) * 2 - 1                               # fakes are all > 900
    gan = packed_gan(m, generator=OffsetGenerator, n_critic=2, unrolled_steps=1)
    ctx = step_context(gan, {"_target_": "torch.optim.SGD", "lr": 0.0})
    gan.train_step([(real, None), (real.flip(0), None)], ctx)
    # 2 critic steps (real, fake each), then the unroll: one D step (real, fake) and G's loss
    seen = gan.discriminator.seen
    assert len(seen) == 7
    for packs, kind in zip(seen, ["real", "fake"] * 3 + ["fake"]):
        assert packs.shape == (6 // m, m)
        assert bool((packs > 900).all()) if kind == "fake" else bool((packs.abs() <= 1).all())
    assert torch.equal(seen[0], real.view(6 // m, m))
    assert torch.equal(seen[2], real.flip(0).view(6 // m, m))

    gan.discriminator.seen.clear()
    gan.eval_step((real[:5], None))                  # 5 examples cycle up to whole packs
    d_real, d_fake = gan.discriminator.seen
    whole = (5 // m) * m
    assert torch.equal(d_real, real[:whole].view(5 // m, m))
    assert d_fake.shape == (5 // m, m) and bool((d_fake > 900).all())

    gan.discriminator.seen.clear()
    assert gan.discriminate(real[:4]).shape == (4,)
    (copies,) = gan.discriminator.seen
    assert torch.equal(copies, real[:4].expand(4, m))             # pack i: m copies of point i
