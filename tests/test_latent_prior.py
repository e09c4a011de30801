"""The generator's latent distributions: N(0, I) as torch draws it, and the Gaussian mixture
(its draws, its temperature, its means saved with the model)."""

import torch

from gentool.losses.adversarial import NonSaturating
from gentool.methods.gan import GAN
from gentool.nets.gan_mlp import MLPDiscriminator, MLPGenerator
from gentool.nets.latent import GaussianMixture, StandardNormal, latent_prior


def test_the_standard_normal_draws_what_torch_randn_draws():
    # the same random stream as before the prior was a module: runs of old configs are unchanged
    torch.manual_seed(3)
    expected = 0.7 * torch.randn(5, 4)
    torch.manual_seed(3)
    assert torch.equal(StandardNormal(4)(5, "cpu", temperature=0.7), expected)


def test_components_zero_is_the_standard_normal_and_more_is_the_mixture():
    assert isinstance(latent_prior(3), StandardNormal)
    mixture = latent_prior(3, components=7, sigma=0.2)
    assert isinstance(mixture, GaussianMixture)
    assert mixture.means.shape == (7, 3) and mixture.sigma == 0.2


def test_every_mixture_draw_is_its_component_mean_plus_sigma_times_a_normal_draw():
    torch.manual_seed(0)
    prior = GaussianMixture(latent_dim=3, components=4, sigma=0.05)
    prior.means.copy_(torch.tensor([[0., 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]]))
    torch.manual_seed(1)
    z = prior(4000, "cpu")
    torch.manual_seed(1)   # the same stream by hand: components, then the noise
    component = torch.randint(4, (4000,))
    noise = torch.randn(4000, 3)
    assert torch.allclose(z, prior.means[component] + 0.05 * noise)
    # each component has about a quarter of the draws, with the spread sigma around its mean
    counts = torch.bincount(component, minlength=4)
    assert counts.min() > 900 and counts.max() < 1100
    within = z - prior.means[component]
    assert abs(within.std().item() - 0.05) < 0.003


def test_mixture_temperature_scales_the_spread_within_components():
    prior = GaussianMixture(latent_dim=2, components=3, sigma=0.5)
    z = prior(50, "cpu", temperature=0.0)
    assert all(any(torch.equal(row, mean) for mean in prior.means) for row in z)


def build_gan(**options):
    return GAN(MLPGenerator, MLPDiscriminator, NonSaturating(), data_shape=[2],
               value_range=[-1, 1], latent_dim=8, ema={"enabled": False}, **options)


def test_the_mixture_means_are_saved_and_restored_with_the_model():
    torch.manual_seed(0)
    trained = build_gan(latent_mixture={"components": 6, "sigma": 0.1})
    state = trained.state_dict()
    assert torch.equal(state["latent.means"], trained.latent.means)
    torch.manual_seed(1)      # another seed draws other means ...
    fresh = build_gan(latent_mixture={"components": 6, "sigma": 0.1})
    assert not torch.equal(fresh.latent.means, trained.latent.means)
    fresh.load_state_dict(state)   # ... and loading the checkpoint brings the trained ones back
    torch.manual_seed(2)
    a = trained.eval().sample(10)
    torch.manual_seed(2)
    assert torch.equal(fresh.eval().sample(10), a)


def test_a_gan_without_a_mixture_keeps_its_state_dict_keys():
    # checkpoints written before the latent prior existed load into today's GAN
    assert not any(k.startswith("latent.") for k in build_gan().state_dict())
