"""GAN networks: shapes from the data shape, batch-statistic layers against hand computations,
spectral norm, projection conditioning, and label misuse."""

import math

import pytest
import torch
from torch import nn

from gentool.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from gentool.nets.gan_mlp import MLPDiscriminator, MLPGenerator
from gentool.nets.layers import (Maxout, MinibatchDiscrimination, MinibatchStdDev, OutputRange,
                                 apply_spectral_norm)

IMAGE_SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 8, 8)]
SMALL = dict(channels=8, max_channels=32)  # the layout is what is tested, not the width
E = math.exp


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
@pytest.mark.parametrize("num_classes", [None, 3])
def test_dcgan_shapes(shape, num_classes):
    labels = torch.tensor([0, 1, 2, 0]) if num_classes else None
    z = torch.randn(4, 10)
    x = DCGANGenerator(10, shape, num_classes=num_classes, **SMALL)(z, labels)
    assert x.shape == (4, *shape)
    d = DCGANDiscriminator(shape, num_classes=num_classes, minibatch_std=True, spectral_norm=True,
                           minibatch_discrimination={"num_kernels": 5, "kernel_dim": 3}, **SMALL)
    assert d(x, labels).shape == (4,)


def test_dcgan_64_has_the_papers_channel_layout():
    g = DCGANGenerator(100, (3, 64, 64))
    assert g.start_channels == 512 and g.start_size == (4, 4)
    ups = [(m.in_channels, m.out_channels) for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert ups == [(512, 256), (256, 128), (128, 64), (64, 3)]
    d = DCGANDiscriminator((3, 64, 64))
    downs = [(m.in_channels, m.out_channels) for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert downs == [(3, 64), (64, 128), (128, 256), (256, 512)]
    # BN on every level but the first; none at all for a WGAN-GP critic
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    critic = DCGANDiscriminator((3, 64, 64), batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


def test_dcgan_28_starts_at_7x7():
    g = DCGANGenerator(8, (1, 28, 28), **SMALL)
    assert g.start_size == (7, 7)


def test_dcgan_init():
    d = dcgan_init(DCGANDiscriminator((3, 32, 32)))
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bn = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert torch.cat([m.weight for m in bn]).mean().item() == pytest.approx(1.0, abs=0.01)
    assert not any(m.bias.any() for m in bn)


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8)])
@pytest.mark.parametrize("num_classes", [None, 3])
def test_mlp_gan_shapes(shape, num_classes):
    labels = torch.tensor([0, 1, 2, 0]) if num_classes else None
    g = MLPGenerator(5, shape, hidden=(16, 16), num_classes=num_classes, batch_norm=True)
    x = g(torch.randn(4, 5), labels)
    assert x.shape == (4, *shape)
    d = MLPDiscriminator(shape, hidden=(16,), num_classes=num_classes, spectral_norm=True,
                         minibatch_std=True, minibatch_discrimination={}, dropout=0.1)
    assert d(x, labels).shape == (4,)


def test_mlp_discriminator_with_no_hidden_layer_scores_the_input():
    d = MLPDiscriminator((2,), hidden=())
    x = torch.randn(3, 2)
    assert torch.equal(d.features(x), x)


def test_output_ranges():
    z = 10 * torch.randn(64, 4)  # large codes: raw outputs well outside every range
    tanh = MLPGenerator(4, (2,), hidden=(8,), value_range=(-1, 1))(z)
    assert tanh.abs().max() <= 1 and tanh.abs().max() > 0.5
    sig = MLPGenerator(4, (1, 8, 8), hidden=(8,), value_range=(2.0, 5.0))(z)
    assert sig.min() >= 2 and sig.max() <= 5
    image = DCGANGenerator(4, (1, 8, 8), value_range=(0.0, 1.0), **SMALL)(z)
    assert image.min() >= 0 and image.max() <= 1
    points = MLPGenerator(4, (2,), hidden=(8,))(z)
    assert points.abs().max() > 1  # None: identity
    x = torch.tensor([-3.0, 0.0, 3.0])
    assert torch.equal(OutputRange((-1, 1))(x), torch.tanh(x))
    assert torch.allclose(OutputRange((2, 5))(x), 2 + 3 * torch.sigmoid(x))
    assert torch.equal(OutputRange(None)(x), x)
    with pytest.raises(ValueError):
        OutputRange((1, 1))


def test_minibatch_discrimination_by_hand():
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    # one kernel of dimension 2, T = I: M_i = f_i, L1 distances d01 = 1, d02 = 2, d12 = 3
    layer = MinibatchDiscrimination(2, num_kernels=1, kernel_dim=2)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))
    o = torch.tensor([[E(-1) + E(-2)], [E(-1) + E(-3)], [E(-2) + E(-3)]])  # no self term
    assert layer.out_features == 3
    assert torch.allclose(layer(f), torch.cat([f, o], 1))
    # two kernels of dimension 1, T = I: kernel 0 sees (0, 1, 0), kernel 1 sees (0, 0, 2)
    layer = MinibatchDiscrimination(2, num_kernels=2, kernel_dim=1)
    with torch.no_grad():
        layer.T.copy_(torch.eye(2))
    o = torch.tensor([[E(-1) + 1, 1 + E(-2)],
                      [E(-1) + E(-1), 1 + E(-2)],
                      [1 + E(-1), E(-2) + E(-2)]])
    assert torch.allclose(layer(f), torch.cat([f, o], 1))


def test_minibatch_discrimination_gradients_match_the_broadcast_formula():
    # Gradients against the definition written out with broadcasting, in double precision, on a
    # batch with two identical samples: their L1 distance is 0, where |.| has no derivative.
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, num_kernels=4, kernel_dim=3).double()
    f = torch.randn(5, 6, dtype=torch.double)
    f[4] = f[1]

    def by_definition(x):
        m = (x @ layer.T).view(len(x), 4, 3)
        return torch.cat([x, torch.exp(-(m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)).sum(1)
                          - 1], dim=1)

    weights = torch.randn(5, 10, dtype=torch.double)

    def gradients(form):
        x = f.clone().requires_grad_()
        return torch.autograd.grad((form(x) * weights).sum(), [x, layer.T])

    assert torch.allclose(layer(f), by_definition(f))
    for got, want in zip(gradients(layer), gradients(by_definition)):
        assert torch.allclose(got, want)

    # The second derivative that R1 and the gradient penalty take through D.
    def r1_gradients(form):
        x = f.clone().requires_grad_()
        (grad_x,) = torch.autograd.grad((form(x) * weights).sum(), x, create_graph=True)
        return torch.autograd.grad(grad_x.square().sum(), [x, layer.T])

    for got, want in zip(r1_gradients(layer), r1_gradients(by_definition)):
        assert torch.allclose(got, want)


def test_minibatch_stddev_by_hand_2d():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    # population std per feature: 1 and 2, mean 1.5 (group_size 4 shrinks to the batch of 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert torch.allclose(out, torch.tensor([[1.0, 2.0, 1.5], [3.0, 6.0, 1.5]]))


def test_minibatch_stddev_by_hand_4d():
    x = torch.tensor([[[[0.0, 0.0]]], [[[2.0, 4.0]]]])  # [2, 1, 1, 2]
    out = MinibatchStdDev(group_size=2)(x)
    assert out.shape == (2, 2, 1, 2)
    assert torch.equal(out[:, :1], x)
    assert torch.allclose(out[:, 1], torch.full((2, 1, 2), 1.5))


def test_minibatch_stddev_groups():
    x = torch.tensor([[0.0], [2.0], [0.0], [4.0]])
    # consecutive groups {0, 1} (std 1) and {2, 3} (std 2)
    assert torch.allclose(MinibatchStdDev(2)(x)[:, 1], torch.tensor([1.0, 1.0, 2.0, 2.0]))
    # 3 examples do not split into groups of 2: the whole batch is one group
    y = torch.tensor([[0.0], [0.0], [3.0]])
    assert torch.allclose(MinibatchStdDev(2)(y)[:, 1], torch.full((3,), math.sqrt(2.0)))


def test_spectral_norm_brings_the_largest_singular_value_to_one():
    torch.manual_seed(0)
    layer = nn.Linear(16, 8)
    with torch.no_grad():
        layer.weight.mul_(10)
    net = apply_spectral_norm(nn.Sequential(layer, nn.ReLU(), nn.Conv2d(1, 2, 3)))
    assert net is not None and all(hasattr(m, "parametrizations") for m in (net[0], net[2]))
    net.train()
    for _ in range(20):  # one power iteration per forward in train mode
        layer(torch.randn(4, 16))
    assert torch.linalg.matrix_norm(layer.weight.detach(), 2).item() == pytest.approx(1, abs=1e-3)
    apply_spectral_norm(net)  # already normalised layers are left as they are
    assert len(net[0].parametrizations.weight) == 1


@pytest.mark.parametrize("make", [
    lambda: MLPDiscriminator((1, 8, 8), hidden=(16,), num_classes=3, minibatch_std=True),
    lambda: DCGANDiscriminator((1, 8, 8), num_classes=3, minibatch_discrimination={}, **SMALL),
])
def test_projection_discriminator_label_term(make):
    torch.manual_seed(0)
    d = make().eval()  # eval: batch norm uses running stats, so features are deterministic
    x = torch.randn(4, 1, 8, 8)
    y1, y2 = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 1, 0, 2])
    with torch.no_grad():
        h = d.features(x)
        embed = d.head.embed.weight
        expected = ((embed[y1] - embed[y2]) * h).sum(1)
        assert torch.allclose(d(x, y1) - d(x, y2), expected, atol=1e-5)


@pytest.mark.parametrize("make, input_shape", [
    (lambda n: MLPGenerator(3, (2,), hidden=(8,), num_classes=n), (3,)),
    (lambda n: MLPDiscriminator((2,), hidden=(8,), num_classes=n), (2,)),
    (lambda n: DCGANGenerator(3, (1, 8, 8), num_classes=n, **SMALL), (3,)),
    (lambda n: DCGANDiscriminator((1, 8, 8), num_classes=n, **SMALL), (1, 8, 8)),
])
def test_label_misuse_raises(make, input_shape):
    inputs, labels = torch.randn(2, *input_shape), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="without labels"):
        make(2)(inputs)
    with pytest.raises(ValueError, match="unconditional"):
        make(None)(inputs, labels)


def test_discriminator_gradients_reach_every_parameter():
    d = DCGANDiscriminator((1, 8, 8), num_classes=2, spectral_norm=True, minibatch_std=True,
                           minibatch_discrimination={"num_kernels": 4, "kernel_dim": 2}, **SMALL)
    d(torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 1, 0])).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())


def test_maxout_takes_the_largest_of_its_pieces_by_hand():
    layer = Maxout(2, 1, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        layer.linear.bias.zero_()
    x = torch.tensor([[2.0, 1.0], [-3.0, -1.0]])
    # pieces: (2, 1, -3) -> 2; (-3, -1, 4) -> 4
    assert layer(x).tolist() == [[2.0], [4.0]]


def test_maxout_discriminator_on_points():
    d = MLPDiscriminator((2,), hidden=[8, 8], maxout_pieces=5)
    assert d(torch.randn(4, 2)).shape == (4,)
    assert sum(isinstance(m, torch.nn.Linear) for m in d.body.modules()) == 2
