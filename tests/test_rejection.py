"""Rejection of draws by the discriminator's score: which draws it keeps on models whose
discriminator is known, the options that choose the share, and its place in training, `sample`
and `eval`."""

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, compose_config
from gentool.errors import GentoolError
from gentool.rejection import reject_lowest, rejection_rate


class KnownModel(torch.nn.Module):
    """Draws 0, 1, ..., 9 with equal odds; its discriminator's logit of draw k is -k."""

    num_classes = None
    rejection_rate = 0.0

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def sample(self, n, labels=None, temperature=1.0):
        return torch.randint(10, (n, 1)).float()

    def discriminate(self, x, labels=None):
        return -x[:, 0]


class LabelEcho(KnownModel):
    """A conditional model whose draw of class c is c plus 10 * (a coin: 0 or 1), and whose
    discriminator checks that each draw is judged with its own label and prefers the coin's 0."""

    num_classes = 4

    def sample(self, n, labels=None, temperature=1.0):
        labels = torch.as_tensor(labels).float().reshape(-1, 1)
        return labels + 10 * torch.randint(2, (labels.shape[0], 1)).float()

    def discriminate(self, x, labels=None):
        assert torch.equal(x[:, 0].long() % 10, torch.as_tensor(labels).long())
        return -x[:, 0]


def test_the_lowest_scored_share_is_dropped_and_the_rest_keep_their_odds():
    torch.manual_seed(0)
    kept = reject_lowest(KnownModel(), 20000, rate=0.25)
    # The 0.25-quantile of logits uniform on {0, -1, ..., -9} is -7 (20% lie below it, 30% at
    # or below), so draws 0..7 stay (a tie with the threshold is kept), each with share 1/8.
    counts = torch.bincount(kept[:, 0].long(), minlength=10)
    assert kept.shape == (20000, 1) and counts[8:].sum() == 0
    assert (counts[:8] / 20000 - 1 / 8).abs().max() < 0.01


def test_rate_zero_keeps_every_draw():
    torch.manual_seed(0)
    kept = reject_lowest(KnownModel(), 5000, rate=0.0)
    assert torch.bincount(kept[:, 0].long(), minlength=10).min() > 400


def test_conditional_draws_keep_the_labels_asked_for_in_order():
    torch.manual_seed(0)
    labels = [3, 0, 3, 1, 2]
    kept = reject_lowest(LabelEcho(), len(labels), rate=0.6, labels=labels)
    assert kept[:, 0].tolist() == [3.0, 0.0, 3.0, 1.0, 2.0]    # the coin's 10 is dropped
    unlabelled = reject_lowest(LabelEcho(), 64, rate=0.6)
    assert set(unlabelled[:, 0].long().tolist()) <= {0, 1, 2, 3}


def test_the_burn_in_reports_its_progress_without_changing_the_draws(monkeypatch):
    monkeypatch.setattr("gentool.rejection.QUIET_S", 0.0)
    calls = []
    torch.manual_seed(0)
    quiet = reject_lowest(KnownModel(), 3000, rate=0.25)
    torch.manual_seed(0)
    told = reject_lowest(KnownModel(), 3000, rate=0.25,
                         progress=lambda scored, total: calls.append((scored, total)))
    assert torch.equal(quiet, told)
    assert calls == [(2500, 10000), (5000, 10000), (7500, 10000), (10000, 10000)]
    # One burn-in per class asked for, counted together, in ten calls (one a tenth).
    calls.clear()
    reject_lowest(LabelEcho(), 5, rate=0.6, labels=[3, 0, 3, 1, 2],
                  progress=lambda scored, total: calls.append((scored, total)))
    assert calls[-1] == (40000, 40000) and len(calls) == 10
    assert [scored for scored, _ in calls] == sorted({scored for scored, _ in calls})
    calls.clear()
    reject_lowest(KnownModel(), 10, rate=0.0, progress=lambda *told: calls.append(told))
    assert calls == []   # no burn-in without rejection


def test_a_burn_in_shorter_than_a_second_reports_nothing():
    from gentool.rejection import BurnInMeter

    now = [0.0]
    calls = []
    meter = BurnInMeter(10_000, lambda scored, total: calls.append(scored), clock=lambda: now[0])
    for seconds in (0.3, 0.6, 0.9, 1.2):
        now[0] = seconds
        meter.add(2_500)
    assert calls == [10_000]   # only the tenth passed after the first second
    quick = []
    reject_lowest(KnownModel(), 10, rate=0.25, progress=lambda *told: quick.append(told))
    assert quick == []   # this model's burn-in takes well under a second


def test_bad_rates_and_models_without_a_discriminator_are_refused():
    class NoCritic(torch.nn.Module):
        def sample(self, n, labels=None, temperature=1.0):
            return torch.zeros(n, 1)

    with pytest.raises(GentoolError, match="needs a model with a discriminator"):
        reject_lowest(NoCritic(), 4, rate=0.2)
    with pytest.raises(GentoolError, match="has none; drop rejection="):
        rejection_rate(NoCritic(), 0.2)
    assert rejection_rate(NoCritic(), None) == 0.0
    for rate in (1.0, -0.1):
        with pytest.raises(GentoolError, match=r"must be a share of draws in \[0, 1\)"):
            rejection_rate(KnownModel(), rate)
    model = KnownModel()
    model.rejection_rate = 0.25
    assert rejection_rate(model, None) == 0.25 and rejection_rate(model, 0.0) == 0.0


def test_a_discriminator_scoring_nan_is_a_clear_error():
    class Broken(KnownModel):
        def discriminate(self, x, labels=None):
            return torch.full((x.shape[0],), float("nan"))

    with pytest.raises(GentoolError, match="cannot rank them"):
        reject_lowest(Broken(), 10, rate=0.2)


@pytest.fixture(scope="module")
def ring_gan(tmp_path_factory):
    from gentool.train import run_train

    run = tmp_path_factory.mktemp("rejection") / "run"
    run_train(compose_config("train", [*TINY, "model=gan", "dataset=ring", "model.latent_dim=2",
                                       "model.rejection=0.2"]), run)
    return run, json.loads((run / "metrics.json").read_text())


def test_training_reports_the_rejected_draws_beside_the_plain_ones(ring_gan):
    _, metrics = ring_gan
    for key in ("modes", "high_quality", "reverse_kl"):
        assert f"test/{key}" in metrics and f"test/rejection/{key}" in metrics


def test_sample_and_eval_reject_on_request(ring_gan, tmp_path, caplog, monkeypatch):
    import logging

    from gentool.evaluate.command import run_eval
    from gentool.sample import run_sample

    run, _ = ring_gan
    checkpoint = f"checkpoint={run}/checkpoints/last.pt"
    monkeypatch.setattr("gentool.rejection.QUIET_S", 0.0)   # log even this short burn-in
    with caplog.at_level(logging.INFO, logger="gentool"):
        out = run_sample(compose_config("sample", [checkpoint, "device=cpu", "n=300",
                                                   "format=npy", f"out={tmp_path}/kept.npy"]))
    assert np.load(out).shape == (300, 2)
    assert "Dropping the 20% of draws the discriminator scores lowest; a burn-in of 10000 " \
        "draws sets the threshold first" in caplog.text
    assert "Rejection burn-in: 10000/10000 draws scored" in caplog.text
    with pytest.raises(GentoolError, match="filters the draws of mode=sample"):
        run_sample(compose_config("sample", [checkpoint, "device=cpu", "rejection=0.5",
                                             "mode=interpolate", f"out={tmp_path}/x.png"]))
    with pytest.raises(GentoolError, match=r"must be a share of draws in \[0, 1\)"):
        run_sample(compose_config("sample", [checkpoint, "device=cpu", "rejection=1.5",
                                             f"out={tmp_path}/y.png"]))
    plain = run_eval(compose_config("eval", [checkpoint, "device=cpu", "rejection=0",
                                             "n_samples=500", "metrics=[samples]"]))
    kept = run_eval(compose_config("eval", [checkpoint, "device=cpu", "n_samples=500",
                                            "metrics=[samples]"]))
    assert 0 <= plain["eval/high_quality"] <= 1 and 0 <= kept["eval/high_quality"] <= 1


def test_the_study_script_keeps_the_rejection_figures_of_a_cell():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    try:
        study = importlib.import_module("mode_collapse")
    finally:
        sys.path.pop(0)
    figures = study.rejection_figures({"test/rejection/modes": 8.0,
                                       "test/rejection/high_quality": 0.985,
                                       "test/rejection/reverse_kl": float("nan"),
                                       "test/rejection/spread": 0.91})
    assert figures == {"rejection": {"modes": 8.0, "high_quality": 98.5, "reverse_kl": None,
                                     "spread": 0.91}}
    assert study.rejection_figures({"test/modes": 8.0}) == {}
