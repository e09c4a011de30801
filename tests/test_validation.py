"""The validation split, the monitored metric with checkpoints/best.pt, and early stopping."""

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY, compose_config, data_overrides
from gentool.data import build_data, take
from gentool.engine.checkpoint import load_checkpoint
from gentool.engine.monitor import Monitor
from gentool.errors import GentoolError
from gentool.evaluate import run_eval
from gentool.finetune import run_finetune
from gentool.sample import run_sample
from gentool.train import run_train


def _data(*overrides, seed=0):
    cfg = compose_config("train", ["device=cpu", *overrides])
    return build_data(cfg.dataset, cfg.data_dir, "cpu", 16, seed)


# -- the split ----------------------------------------------------------------------------------

def test_validation_split_is_held_out_of_train_and_the_same_for_every_run_seed():
    whole = _data()
    runs = [_data("dataset.validation=100", seed=seed) for seed in (0, 7)]
    for data in runs:
        assert data.validation.num_examples == 100
        assert data.train.num_examples == whole.train.num_examples - 100
        assert data.test.num_examples == whole.test.num_examples
    held = [take(d.validation, 100).x for d in runs]
    assert torch.equal(*held)
    # Every train image is either kept for training or held out, never both.
    train = take(runs[0].train, runs[0].train.num_examples).x.flatten(1)
    everything = take(whole.train, whole.train.num_examples).x.flatten(1)
    assert len(train) + len(held[0]) == len(everything)
    rows = {tuple(r.tolist()) for r in everything}
    assert all(tuple(r.tolist()) in rows for r in held[0].flatten(1))
    assert torch.allclose(torch.cat([train, held[0].flatten(1)]).sum(0), everything.sum(0))


def test_validation_of_pairs_and_toy_sets(data_root):
    pairs = _data("dataset=derived_pairs", "dataset@dataset.source=digits", "dataset.validation=50")
    assert pairs.validation.num_examples == 50 and pairs.validation.pairs
    ring = [_data("dataset=ring", "dataset.validation=300", seed=s) for s in (0, 1)]
    # Training points are fresh draws, so the validation set is a fixed draw of its own.
    assert ring[0].validation.num_examples == 300
    assert torch.equal(ring[0].validation.points, ring[1].validation.points)
    assert not torch.equal(ring[0].validation.points[:300], ring[0].test.points[:300])


def test_validation_is_refused_for_streamed_folders_and_too_large(data_root):
    # Its held-out split is a seeded share of the images (data/folder.py), said as such.
    with pytest.raises(GentoolError, match=r"streams its images from files.*validation=0 \(its "
                                           r"held-out split is the share dataset.source."
                                           r"test_fraction=0.05 of the images"):
        _data(*data_overrides("folder", data_root), "dataset.validation=5")
    with pytest.raises(GentoolError, match="holds only .* examples"):
        _data("dataset.validation=100000")
    with pytest.raises(GentoolError, match="dataset.validation is -1"):
        _data("dataset.validation=-1")


def test_evaluation_splits_of_dynamic_data_are_binarised_once_with_a_fixed_seed():
    runs = [_data("dataset.binarize=dynamic", "dataset.validation=50", seed=s) for s in (0, 3)]
    for split in ("test", "validation"):
        first, second = (take(getattr(d, split), 50).x for d in runs)
        torch.manual_seed(1)
        again = take(getattr(runs[0], split), 50).x
        assert torch.equal(first, second) and torch.equal(first, again)
        assert set(first.unique().tolist()) == {0.0, 1.0}


# -- the monitor --------------------------------------------------------------------------------

def test_monitor_keeps_the_best_value_and_counts_evaluations_since():
    monitor = Monitor("val/loss", "min", patience=2, has_validation=True)
    seen = [monitor.update({"val/loss": v}, step) for step, v in
            enumerate([3.0, 2.0, 2.0, float("nan"), 1.0, 1.5], start=1)]
    assert seen == [True, True, False, False, True, False]
    assert (monitor.best, monitor.best_step, monitor.since_best) == (1.0, 5, 1)
    assert not monitor.should_stop
    monitor.update({"val/loss": 1.2}, 7)
    assert monitor.should_stop
    restored = Monitor("val/loss", "min", patience=2, has_validation=True)
    assert restored.load_state_dict(monitor.state_dict())
    assert restored.state_dict() == monitor.state_dict()
    # Another key or direction starts afresh.
    assert not Monitor("val/loss", "max", has_validation=True).load_state_dict(
        monitor.state_dict())
    up = Monitor("test/elbo", "max")
    assert [up.update({"test/elbo": v}, s) for s, v in enumerate([-5.0, -4.0, -4.5])] == \
        [True, True, False]


@pytest.mark.parametrize("overrides,match", [
    (["trainer.monitor=val/loss"], "no validation split.*dataset.validation=N"),
    (["trainer.early_stopping=3"], "nothing is monitored"),
    (["trainer.monitor=loss"], "val/<metric> or test/<metric>"),
    (["trainer.monitor=test/loss", "trainer.monitor_mode=up"], "min or max"),
    (["dataset.validation=50", "trainer.monitor=val/accuracy"],
     r"reports only .*val/elbo.*val/loss"),
])
def test_monitor_settings_that_cannot_work_are_refused_before_training(tmp_path, overrides,
                                                                       match):
    with pytest.raises(GentoolError, match=match):
        run_train(compose_config("train", [*TINY, "model=vae", *overrides]), tmp_path)
    assert not (tmp_path / "checkpoints").exists()


# -- runs ---------------------------------------------------------------------------------------

# Stochastic everywhere it can be (VAE noise, dynamic binarisation, shuffling), with
# a validation split, a monitored metric and early stopping whose patience does not run out.
MONITORED = [*TINY, "model=vae", "dataset.binarize=dynamic", "trainer.max_steps=8",
             "trainer.checkpoint_every=4", "trainer.eval_every=1",
             "dataset.validation=100", "trainer.monitor=val/loss", "trainer.early_stopping=50"]


def _assert_same_weights(a, b):
    a, b = a["modules"]["method"], b["modules"]["method"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_with_a_monitor_gives_the_uninterrupted_run_and_best_checkpoint(tmp_path):
    run_train(compose_config("train", MONITORED), tmp_path / "full")
    # A run of the first 4 steps, then resumed (a requeued job), keeps the record of the first 4.
    run_train(compose_config("train", [*MONITORED, "trainer.max_steps=4"]), tmp_path / "again")
    first = load_checkpoint(tmp_path / "again/checkpoints/last.pt")["monitor"]
    assert first["best_step"] is not None
    run_train(compose_config("train", MONITORED), tmp_path / "again")
    for name in ("last.pt", "best.pt"):
        full = load_checkpoint(tmp_path / "full/checkpoints" / name)
        again = load_checkpoint(tmp_path / "again/checkpoints" / name)
        _assert_same_weights(full, again)
        assert full["monitor"] == again["monitor"] and full["step"] == again["step"]
    best = load_checkpoint(tmp_path / "full/checkpoints/best.pt")
    assert best["step"] == best["monitor"]["best_step"]
    assert json.loads((tmp_path / "full/metrics.json").read_text()) == \
        json.loads((tmp_path / "again/metrics.json").read_text())


def test_a_run_that_stops_improving_stops_early_and_reports_its_best_checkpoint(tmp_path):
    # A falling loss monitored as if it should rise: only the first evaluation is a best.
    stops = [*TINY, "model=vae", "trainer.max_steps=40", "trainer.eval_every=1",
             "trainer.checkpoint_every=100", "dataset.validation=100",
             "trainer.monitor=val/loss", "trainer.monitor_mode=max", "trainer.early_stopping=2"]
    objective = run_train(compose_config("train", stops), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["step"] == 3 and metrics["stopped_early"] and metrics["best_step"] == 1
    assert metrics["best/val/loss"] == pytest.approx(metrics["val/loss"])
    assert objective == metrics["test/loss"]
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == 3
    assert load_checkpoint(tmp_path / "checkpoints/best.pt")["step"] == 1
    # Run again in its directory: it has stopped, so nothing trains and the result is the same.
    assert run_train(compose_config("train", stops), tmp_path) == objective
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == 3


@pytest.mark.parametrize("monitor,mode", [("test/modes", "max"), ("val/d_loss", "min"),
                                          ("val/d_loss", "max")])
def test_a_gan_monitors_what_its_evaluation_reports(tmp_path, monitor, mode):
    """test/modes comes from the evaluation suite of the toy sets, val/d_loss from the GAN's
    eval_step; both directions of one key select the other evaluation when their values differ."""
    overrides = [*TINY, "model=gan", "dataset=ring", "dataset.validation=64",
                 f"trainer.monitor={monitor}", f"trainer.monitor_mode={mode}"]
    run_train(compose_config("train", overrides), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "val/d_loss" in metrics
    # The two periodic evaluations (steps 3 and 6), as logged to TensorBoard.
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    values = {e.step: e.value for e in events.Scalars(monitor)}
    assert sorted(values) == [3, 6]
    if monitor == "val/d_loss":
        assert values[3] != values[6]       # so min and max pick different steps
    # The best is a strict improvement: on a tie the earlier evaluation stays best.
    better = values[6] > values[3] if mode == "max" else values[6] < values[3]
    expected = 6 if better else 3
    assert metrics["best_step"] == expected
    assert metrics[f"best/{monitor}"] == pytest.approx(values[expected])
    assert load_checkpoint(tmp_path / "checkpoints/best.pt")["step"] == expected


def test_sample_eval_and_finetune_accept_best_pt(tmp_path):
    run_train(compose_config("train", [*TINY, "model=vae", "dataset.validation=100",
                                       "trainer.monitor=val/loss"]), tmp_path / "run")
    best = tmp_path / "run/checkpoints/best.pt"
    metrics = run_eval(compose_config("eval", ["device=cpu", f"checkpoint={best}",
                                               "metrics=[likelihood]", "iwae_k=5",
                                               "batch_size=32"]))
    assert metrics["eval/iwae_nll"] > 0
    out = run_sample(compose_config("sample", ["device=cpu", f"checkpoint={best}", "n=4",
                                               f"out={tmp_path}/s.png"]))
    assert out.is_file()
    run_finetune(compose_config("finetune", ["device=cpu", f"checkpoint={best}",
                                             "finetune.steps=5", "finetune.batch_size=16"]),
                 tmp_path / "ft")
    assert (tmp_path / "ft/metrics.json").is_file()
