"""Adversarial losses and discriminator penalties against hand computations."""

import ast
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

import gentool.configs
from gentool.config import instantiate
from gentool.errors import GentoolError
from gentool.losses import adversarial, penalties
from gentool.losses.adversarial import (Hinge, LeastSquares, Minimax, NonSaturating,
                                        Wasserstein)
from gentool.methods.gan import GAN
from gentool.nets.gan_mlp import MLPDiscriminator, MLPGenerator
from gentool.losses.penalties import (add_instance_noise, clip_weights, gradient_penalty,
                                      instance_noise_sigma, r1_penalty, r2_penalty)

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def losses_on_fixed_logits(loss):
    d = loss.discriminator_loss(torch.tensor(REAL), torch.tensor(FAKE))
    g = loss.generator_loss(torch.tensor(FAKE))
    assert d.shape == () and g.shape == ()
    return d.item(), g.item()


# ---------------------------------------------------------------------------- adversarial losses

def test_minimax_is_the_halved_cross_entropy_game():
    d, g = losses_on_fixed_logits(Minimax())
    by_hand_d = (-0.5 * mean(math.log(sigmoid(r)) for r in REAL)
                 - 0.5 * mean(math.log(1 - sigmoid(f)) for f in FAKE))
    by_hand_g = 0.5 * mean(math.log(1 - sigmoid(f)) for f in FAKE)
    assert d == pytest.approx(by_hand_d, rel=1e-6)
    assert g == pytest.approx(by_hand_g, rel=1e-6)


def test_nonsaturating_shares_the_discriminator_and_flips_the_generator_target():
    d, g = losses_on_fixed_logits(NonSaturating())
    assert d == pytest.approx(losses_on_fixed_logits(Minimax())[0], rel=1e-7)
    assert g == pytest.approx(-0.5 * mean(math.log(sigmoid(f)) for f in FAKE), rel=1e-6)


def test_wasserstein_hinge_and_least_squares_values():
    # mean(f) = -1.25, mean(r) = 0.5
    assert losses_on_fixed_logits(Wasserstein()) == pytest.approx((-1.25 - 0.5, 1.25))
    # D: relu(1-2)=0, relu(1+1)=2 -> 1;  relu(1+0.5)=1.5, relu(1-3)=0 -> 0.75.  G: -mean(f)
    assert losses_on_fixed_logits(Hinge()) == pytest.approx((1.0 + 0.75, 1.25))
    # D: 0.5 * mean(1, 4) + 0.5 * mean(0.25, 9);  G: 0.5 * mean(0.25, 16)
    assert losses_on_fixed_logits(LeastSquares()) == pytest.approx(
        (0.5 * 2.5 + 0.5 * 4.625, 0.5 * 8.125))


def test_only_wasserstein_is_flagged_for_weight_clipping():
    flagged = {type(loss).__name__: loss.wasserstein
               for loss in (Minimax(), NonSaturating(), Wasserstein(), Hinge(), LeastSquares())}
    assert flagged == {"Minimax": False, "NonSaturating": False, "Wasserstein": True,
                       "Hinge": False, "LeastSquares": False}


def test_minimax_generator_saturates_where_nonsaturating_does_not():
    """The lecture's point: when D confidently rejects a sample (logit -10), the minimax
    generator's gradient is ~0.5 sigmoid(f) ~ 2e-5, the non-saturating one ~0.5 (1 - sigmoid(f))."""
    f = -10.0
    grads = {}
    for loss in (Minimax(), NonSaturating()):
        fake = torch.tensor([f], requires_grad=True)
        loss.generator_loss(fake).backward()
        grads[loss.name] = fake.grad.item()
    assert grads["minimax"] == pytest.approx(-0.5 * sigmoid(f), rel=1e-4)
    assert grads["nonsaturating"] == pytest.approx(-0.5 * (1 - sigmoid(f)), rel=1e-6)
    # Both push the logit up (descent on L_G raises f), one ~20000 times harder.
    assert abs(grads["nonsaturating"]) > 1e4 * abs(grads["minimax"])


@pytest.mark.parametrize("loss", [Minimax(), NonSaturating(), Wasserstein(), Hinge(),
                                  LeastSquares()], ids=lambda loss: loss.name)
def test_losses_are_float32_and_finite_on_extreme_bf16_logits(loss):
    # log(sigmoid(-200)) underflows to -inf in float32; the softplus forms stay finite.
    real = torch.tensor([-200.0, 200.0], dtype=torch.bfloat16, requires_grad=True)
    fake = torch.tensor([200.0, -200.0], dtype=torch.bfloat16, requires_grad=True)
    d = loss.discriminator_loss(real, fake)
    g = loss.generator_loss(fake)
    assert d.dtype == torch.float32 and g.dtype == torch.float32
    assert torch.isfinite(d) and torch.isfinite(g)
    # By hand: softplus(200) = 200 and softplus(-200) = 0 in float32 (e^-200 underflows), each
    # batch holds one logit of each sign, and bf16 holds +-200 exactly.
    #   minimax / nonsaturating D: 0.5 mean(sp(200), sp(-200)) + 0.5 mean(sp(200), sp(-200)) = 100
    #   minimax G: -0.5 mean(sp(f)) = -50;   nonsaturating G: 0.5 mean(sp(-f)) = 50
    #   wasserstein D: mean(f) - mean(r) = 0;   G: -mean(f) = 0
    #   hinge D: mean(relu(201), relu(-199)) + mean(relu(201), relu(-199)) = 201;   G: 0
    #   least squares D: 0.5 mean(201^2, 199^2) + 0.5 mean(200^2, 200^2) = 20000.5 + 20000
    #                 G: 0.5 mean(199^2, 201^2) = 20000.5
    # and dD/dr for r = (-200, 200): -0.25 sigmoid(-r) = (-0.25, 0); -1/2 each; -0.5 [1 - r > 0];
    # 0.5 (r - 1) = (-100.5, 99.5).
    expected = {"minimax": (100.0, -50.0, [-0.25, 0.0]),
                "nonsaturating": (100.0, 50.0, [-0.25, 0.0]),
                "wasserstein": (0.0, 0.0, [-0.5, -0.5]),
                "hinge": (201.0, 0.0, [-0.5, 0.0]),
                "least_squares": (40000.5, 20000.5, [-100.5, 99.5])}[loss.name]
    assert (d.item(), g.item()) == pytest.approx(expected[:2], rel=1e-6, abs=1e-6)
    (d + g).backward()
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()
    assert real.grad.float().tolist() == pytest.approx(expected[2], abs=1e-6)


@pytest.mark.parametrize("name,cls", [("minimax", Minimax), ("nonsaturating", NonSaturating),
                                      ("wasserstein", Wasserstein), ("hinge", Hinge),
                                      ("least_squares", LeastSquares)])
def test_each_loss_config_builds_its_class(name, cls):
    path = Path(gentool.configs.__file__).parent / "loss" / f"{name}.yaml"
    built = instantiate(OmegaConf.load(path))
    assert type(built) is cls and built.name == name


def test_losses_package_imports_nothing_of_gentool_but_errors():
    for module in (adversarial, penalties):
        tree = ast.parse(Path(module.__file__).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        assert {m for m in imported if m.startswith("gentool")} <= {"gentool.errors"}


# ----------------------------------------------------------------------------- gradient penalty

def test_gradient_penalty_of_a_linear_critic_is_its_slope_error_whatever_eps():
    w = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # ||w|| = 5, for inputs [B, 1, 2, 2]
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)
    assert gradient_penalty(critic, real, fake, target=2.0).item() == pytest.approx((5 - 2) ** 2)


def test_gradient_penalty_draws_one_eps_per_example():
    # D(x) = 0.5 ||x||^2 has gradient x itself, so the penalty is mean_i (||x_hat_i|| - 1)^2.
    critic = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)  # noqa: E731
    real_rows = [[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]
    fake_rows = [[0.0, -1.0], [1.0, 0.0], [0.5, 0.5]]
    real = torch.tensor(real_rows).view(3, 1, 1, 2)
    fake = torch.tensor(fake_rows).view(3, 1, 1, 2)

    torch.manual_seed(7)
    penalty = gradient_penalty(critic, real, fake).item()
    torch.manual_seed(7)
    eps = torch.rand(3, 1, 1, 1).flatten().tolist()

    def by_hand(eps_per_row):
        terms = []
        for e, r, f in zip(eps_per_row, real_rows, fake_rows):
            x_hat = [e * ri + (1 - e) * fi for ri, fi in zip(r, f)]
            terms.append((math.sqrt(sum(v * v for v in x_hat)) - 1) ** 2)
        return mean(terms)

    assert penalty == pytest.approx(by_hand(eps), rel=1e-5)
    shared = by_hand([eps[0]] * 3)
    assert abs(shared - by_hand(eps)) > 1e-2  # the batch is one where sharing eps would show
    assert penalty != pytest.approx(shared, rel=1e-3)


def test_gradient_penalty_trains_the_critic_and_not_the_generator():
    critic_net = nn.Linear(3, 1)
    with torch.no_grad():
        critic_net.weight.copy_(torch.tensor([[1.0, 2.0, 2.0]]))  # ||w|| = 3
    critic = lambda x: critic_net(x).squeeze(-1)  # noqa: E731
    generator_param = nn.Parameter(torch.tensor(2.0))
    fake = generator_param * torch.randn(5, 3)
    penalty = gradient_penalty(critic, torch.randn(5, 3), fake)
    assert penalty.item() == pytest.approx((3 - 1) ** 2, rel=1e-6)
    # A critic whose gradient depends on x_hat: would reach the generator without the detach.
    quadratic = gradient_penalty(lambda x: 0.5 * x.pow(2).sum(1), torch.randn(5, 3), fake)
    (penalty + quadratic).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 4/3 w: exists only through create_graph=True.
    assert torch.allclose(critic_net.weight.grad, torch.tensor([[4 / 3, 8 / 3, 8 / 3]]),
                          atol=1e-5)
    assert generator_param.grad is None


# ------------------------------------------------------------------------------------ R1 and R2

def test_r1_penalty_values():
    w = torch.tensor([3.0, 4.0])
    assert r1_penalty(lambda x: x @ w, torch.randn(6, 2)).item() == pytest.approx(25.0)
    # D(x) = sum(x^2): gradient 2x, squared norm 4 ||x||^2 -> mean(4 * 5, 4 * 9)
    real = torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    assert r1_penalty(lambda x: x.pow(2).sum(1), real).item() == pytest.approx(28.0)


def test_r1_penalty_trains_the_critic():
    critic_net = nn.Linear(2, 1)
    with torch.no_grad():
        critic_net.weight.copy_(torch.tensor([[3.0, 4.0]]))
    r1_penalty(lambda x: critic_net(x).squeeze(-1), torch.randn(4, 2)).backward()
    # d/dw ||w||^2 = 2 w
    assert torch.allclose(critic_net.weight.grad, torch.tensor([[6.0, 8.0]]))


def test_r2_penalty_is_r1_on_fake_and_sends_nothing_to_the_generator():
    critic_net = nn.Linear(2, 1)
    with torch.no_grad():
        critic_net.weight.copy_(torch.tensor([[3.0, 4.0]]))
    generator_param = nn.Parameter(torch.tensor(1.5))
    fake = generator_param * torch.tensor([[1.0, 2.0], [0.0, 3.0]])
    penalty = r2_penalty(lambda x: critic_net(x).squeeze(-1), fake)
    assert penalty.item() == pytest.approx(25.0)
    # D(x) = sum(x^2) on 1.5 * rows: mean(4 * 2.25 * 5, 4 * 2.25 * 9). This one depends on x, so
    # it would reach the generator if fake were not detached.
    quadratic = r2_penalty(lambda x: x.pow(2).sum(1), fake)
    assert quadratic.item() == pytest.approx(63.0)
    (penalty + quadratic).backward()
    assert torch.allclose(critic_net.weight.grad, torch.tensor([[6.0, 8.0]]))
    assert generator_param.grad is None


# ------------------------------------------------------------------------------- instance noise

def test_instance_noise_schedule():
    assert instance_noise_sigma(0, 0.2, 100) == pytest.approx(0.2)
    assert instance_noise_sigma(50, 0.2, 100) == pytest.approx(0.1)
    assert instance_noise_sigma(75, 0.2, 100) == pytest.approx(0.05)
    assert instance_noise_sigma(100, 0.2, 100) == 0.0
    assert instance_noise_sigma(1000, 0.2, 100) == 0.0
    assert instance_noise_sigma(1000, 0.2, 0) == pytest.approx(0.2)   # no annealing
    assert instance_noise_sigma(1000, 0.2, -1) == pytest.approx(0.2)


def test_add_instance_noise_statistics_and_identity_at_zero():
    x = torch.full((10000,), 3.0)
    torch.manual_seed(0)
    noise = add_instance_noise(x, 0.5) - x
    assert noise.std().item() == pytest.approx(0.5, abs=0.02)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.02)

    state = torch.get_rng_state()
    assert add_instance_noise(x, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)  # no random draw when off


# ------------------------------------------------------------------------------- weight clipping

def test_clip_weights_clamps_parameters_in_place_and_leaves_buffers():
    net = nn.Sequential(nn.Linear(3, 1), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[-0.5, 0.005, 0.3]]))
        net[0].bias.fill_(-0.02)
        net[1].running_var.fill_(4.0)
    weight = net[0].weight
    clip_weights(net, 0.01)
    assert net[0].weight is weight and weight.is_leaf and weight.requires_grad
    assert torch.allclose(weight, torch.tensor([[-0.01, 0.005, 0.01]]))
    assert net[0].bias.item() == pytest.approx(-0.01)
    assert net[1].weight.item() == pytest.approx(0.01)   # batch-norm scale, a parameter (1.0)
    assert net[1].running_var.item() == 4.0              # a buffer: untouched


@pytest.mark.parametrize("option,message", [
    ({"weight_clip": 0.0}, r"model\.weight_clip must be positive"),
    ({"weight_clip": -0.01}, r"model\.weight_clip must be positive"),
    ({"instance_noise": {"sigma": -0.1}}, r"model\.instance_noise\.sigma must be >= 0"),
])
def test_a_gan_refuses_bad_regulariser_values_when_it_is_built(option, message):
    """Checked once, where the GAN is built (also by code), never in the train step."""
    with pytest.raises(GentoolError, match=message):
        GAN(partial(MLPGenerator, hidden=(4,)), partial(MLPDiscriminator, hidden=(4,)),
            Wasserstein(), data_shape=(2,), value_range=(-1, 1), latent_dim=2, **option)
