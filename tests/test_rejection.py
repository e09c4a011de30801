"""Discriminator rejection sampling: F(x) against a hand computation, the acceptance it implies on
models whose discriminator is known, and its place in training, `sample` and `eval`."""

import json
import math

import numpy as np
import pytest
import torch

from conftest import TINY, compose_config
from gentool.errors import GentoolError
from gentool.rejection import DRSettings, drs_log_odds, rejection_sample


class KnownModel(torch.nn.Module):
    """Draws 0 or 10 with equal odds; its 'discriminator' gives logit +2 at 0 and -5 at 10."""

    num_classes = None

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))   # a device for the sampler to read

    def sample(self, n, labels=None, temperature=1.0):
        return 10.0 * torch.randint(2, (n, 1)).float()

    def discriminate(self, x, labels=None):
        return torch.where(x[:, 0] < 5, 2.0, -5.0)


class ConstantScore(KnownModel):
    def sample(self, n, labels=None, temperature=1.0):
        return torch.randn(n, 1)

    def discriminate(self, x, labels=None):
        return torch.full((x.shape[0],), 0.3)


class LabelEcho(KnownModel):
    """A conditional model whose draw of class c is c itself, and whose discriminator checks that
    each draw is judged with its own label (and prefers odd classes)."""

    num_classes = 4

    def sample(self, n, labels=None, temperature=1.0):
        return torch.as_tensor(labels).float().reshape(-1, 1)

    def discriminate(self, x, labels=None):
        assert torch.equal(x[:, 0].long(), torch.as_tensor(labels).long())
        return (x[:, 0] % 2) * 3.0


def test_log_odds_match_the_paper_by_hand():
    f = drs_log_odds(torch.tensor([0.0, -1.0]), max_logit=0.0, gamma=0.0)
    # F(D_M) = -log(1 - exp(-eps)) = -log(1e-6) (to first order), eps = 1e-6;
    # F(-1) = -1 - log(1 - exp(-1 - eps)).
    assert f[0].item() == pytest.approx(-math.log(1e-6), rel=1e-6)
    assert f[1].item() == pytest.approx(-1 - math.log(1 - math.exp(-1 - 1e-6)), rel=1e-9)
    # At gamma = 0, sigmoid(F) is the exact rejection rule exp(D~ - D~_M).
    assert torch.sigmoid(f[1]).item() == pytest.approx(math.exp(-1), rel=1e-5)
    assert drs_log_odds(torch.tensor([-1.0]), 0.0, gamma=2.0).item() == \
        pytest.approx(f[1].item() - 2.0, rel=1e-6)


def test_draws_the_discriminator_rejects_are_dropped():
    torch.manual_seed(0)
    drawn = rejection_sample(KnownModel(), 4000, settings=DRSettings(gamma_quantile=0.8))
    # gamma = F(2) at the 0.8 quantile, since half the burn-in draws sit at logit 2: a draw at 0
    # is kept with sigmoid(0) = 1/2, one at 10 with sigmoid(-7 - log(1 - e^-7) - gamma) ~ 1e-9.
    assert drawn.gamma == pytest.approx(-math.log(1e-6), rel=1e-4)
    assert drawn.samples.shape == (4000, 1)
    assert (drawn.samples == 0).all()
    assert drawn.acceptance == pytest.approx(0.25, abs=0.02)


def test_a_constant_discriminator_keeps_half_of_every_draw_and_their_distribution():
    torch.manual_seed(0)
    drawn = rejection_sample(ConstantScore(), 20000)
    assert drawn.acceptance == pytest.approx(0.5, abs=0.01)     # sigmoid(F - gamma) = 1/2
    assert drawn.samples.mean().item() == pytest.approx(0.0, abs=0.03)
    assert drawn.samples.std().item() == pytest.approx(1.0, abs=0.03)


def test_conditional_draws_keep_the_labels_asked_for_in_order():
    torch.manual_seed(0)
    labels = [3, 0, 3, 1, 2]
    drawn = rejection_sample(LabelEcho(), len(labels), labels=labels,
                             settings=DRSettings(burn_in=100, batch=50))
    assert drawn.samples[:, 0].tolist() == [3.0, 0.0, 3.0, 1.0, 2.0]
    unlabelled = rejection_sample(LabelEcho(), 64, settings=DRSettings(burn_in=100, batch=50))
    assert set(unlabelled.samples[:, 0].long().tolist()) <= {0, 1, 2, 3}


def test_a_model_without_a_discriminator_is_refused():
    class NoCritic(torch.nn.Module):
        def sample(self, n, labels=None, temperature=1.0):
            return torch.zeros(n, 1)

    with pytest.raises(GentoolError, match="needs a model with a discriminator"):
        rejection_sample(NoCritic(), 4)


def test_a_discriminator_that_accepts_nothing_is_a_clear_error():
    class Outlier(KnownModel):
        def discriminate(self, x, labels=None):   # a single huge logit in the burn-in
            scores = torch.full((x.shape[0],), -50.0)
            scores[0] = 50.0
            return scores

    with pytest.raises(GentoolError, match="lower the gamma quantile"):
        rejection_sample(Outlier(), 10, settings=DRSettings(
            burn_in=10, batch=10, gamma_quantile=1.0, max_draws_per_sample=3))


@pytest.fixture(scope="module")
def ring_gan(tmp_path_factory):
    from gentool.train import run_train

    run = tmp_path_factory.mktemp("drs") / "run"
    run_train(compose_config("train", [*TINY, "model=gan", "dataset=ring", "model.latent_dim=2"]),
              run)
    return run, json.loads((run / "metrics.json").read_text())


def test_training_reports_drs_figures_beside_the_plain_ones(ring_gan):
    _, metrics = ring_gan
    for key in ("modes", "high_quality", "reverse_kl"):
        assert f"test/{key}" in metrics and f"test/drs/{key}" in metrics
    assert 0 < metrics["test/drs/acceptance"] <= 1


def test_sample_and_eval_draw_by_drs_on_request(ring_gan, tmp_path):
    from gentool.evaluate.command import run_eval
    from gentool.sample import run_sample

    run, _ = ring_gan
    out = run_sample(compose_config("sample", [
        f"checkpoint={run}/checkpoints/last.pt", "device=cpu", "drs=true", "n=300",
        "format=npy", f"out={tmp_path}/drs.npy"]))
    assert np.load(out).shape == (300, 2)
    with pytest.raises(GentoolError, match="drs=true filters the draws of mode=sample"):
        run_sample(compose_config("sample", [
            f"checkpoint={run}/checkpoints/last.pt", "device=cpu", "drs=true",
            "mode=interpolate", f"out={tmp_path}/x.png"]))
    results = run_eval(compose_config("eval", [
        f"checkpoint={run}/checkpoints/last.pt", "device=cpu", "drs=true", "n_samples=500",
        "metrics=[samples]"]))
    assert 0 <= results["eval/high_quality"] <= 1 and "eval/modes" in results
