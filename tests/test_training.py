"""Tier 2: tiny CPU runs through `run_train`, exact resume, divergence handling."""

import json
import logging

import numpy as np
import pytest
import torch

from conftest import DATA_KINDS, TINY, data_overrides
from gentool.engine.checkpoint import load_checkpoint
from gentool.errors import GentoolError, TrainingDiverged
from gentool.methods.vae import VAE
from gentool.train import run_train

# Every model with every loss it accepts (VAEs need a likelihood; Gaussian in its three forms).
MODEL_LOSSES = [(m, l) for m in ("ae", "ae_linear", "conv_ae")
                for l in ("mse", "bernoulli", "gaussian")] + \
               [(m, l) for m in ("vae", "conv_vae")
                for l in ("bernoulli", "gaussian", "gaussian_per_pixel")]
LOSS_OVERRIDES = {"gaussian_per_pixel": ["loss=gaussian", "loss.variance=per_pixel"]}


def overrides_for(model, loss):
    return [f"model={model}", *LOSS_OVERRIDES.get(loss, [f"loss={loss}"])]


@pytest.mark.parametrize("kind", list(DATA_KINDS))
@pytest.mark.parametrize("model,loss", MODEL_LOSSES)
def test_every_model_and_loss_trains_on_every_data_kind(compose_train, data_root, tmp_path,
                                                        kind, model, loss):
    cfg = compose_train(*TINY, *overrides_for(model, loss), *data_overrides(kind, data_root))
    objective = run_train(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["step"] == 6 and np.isfinite(objective)
    assert objective == pytest.approx(metrics["test/loss"])
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == \
        {"last.pt", "step_3.pt", "step_6.pt"}
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_an_unknown_schedule_is_refused_before_the_data_loads(compose_train, tmp_path,
                                                             monkeypatch):
    import gentool.train
    loaded = []

    def build_data(*args, **kwargs):   # a data set missing here would be downloaded
        loaded.append(args)
        raise AssertionError("build_data was called")

    monkeypatch.setattr(gentool.train, "build_data", build_data)
    cfg = compose_train(*TINY, "trainer.schedule.name=wobbly")
    with pytest.raises(GentoolError, match="^trainer.schedule.name is 'wobbly' but must be one of "
                                           "constant, cosine, linear, step"):
        run_train(cfg, tmp_path / "run")
    assert not loaded


def _weights(path):
    return load_checkpoint(path)["modules"]["method"]


def _assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# Stochastic everywhere it can be: VAE noise, dynamic binarisation, shuffling, a cosine schedule.
RESUME = [*TINY, "model=vae", "dataset.binarize=dynamic", "trainer.max_steps=8",
          "trainer.checkpoint_every=4", "trainer.eval_every=3", "trainer.schedule.name=cosine",
          "trainer.schedule.warmup_steps=2"]


def test_resume_from_a_checkpoint_gives_the_uninterrupted_weights(compose_train, tmp_path):
    run_train(compose_train(*RESUME), tmp_path / "full")
    resumed = compose_train(*RESUME, f"resume={tmp_path / 'full/checkpoints/step_4.pt'}")
    run_train(resumed, tmp_path / "resumed")
    _assert_same_weights(_weights(tmp_path / "full/checkpoints/last.pt"),
                         _weights(tmp_path / "resumed/checkpoints/last.pt"))
    assert load_checkpoint(tmp_path / "resumed/checkpoints/last.pt")["step"] == 8


def test_a_run_directory_with_last_pt_resumes_by_itself(compose_train, tmp_path):
    run_train(compose_train(*RESUME), tmp_path / "full")
    # The same command, stopped at step 4 and started again in the same directory (a requeued job):
    constant = [o for o in RESUME if "schedule" not in o]
    run_train(compose_train(*constant, "trainer.max_steps=4"), tmp_path / "again")
    run_train(compose_train(*constant), tmp_path / "again")
    run_train(compose_train(*constant), tmp_path / "reference")
    _assert_same_weights(_weights(tmp_path / "reference/checkpoints/last.pt"),
                         _weights(tmp_path / "again/checkpoints/last.pt"))


def test_a_run_directory_with_last_pt_wins_over_resume_and_says_so(compose_train, tmp_path,
                                                                   caplog):
    run_train(compose_train(*RESUME), tmp_path / "other")
    run_train(compose_train(*RESUME, "trainer.max_steps=4"), tmp_path / "own")
    with caplog.at_level(logging.INFO, logger="gentool"):
        run_train(compose_train(*RESUME, f"resume={tmp_path / 'other'}",
                                "trainer.max_steps=5"), tmp_path / "own")
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [f"resume={tmp_path / 'other'} is not used: {tmp_path / 'own'} already holds "
                      "its own checkpoints/last.pt (step 4), which this run continues; to start "
                      f"from {tmp_path / 'other'}, choose a new hydra.run.dir="]
    assert f"Resumed from {tmp_path / 'own/checkpoints/last.pt'} at step 4" in caplog.text
    # resume= naming the run's own checkpoint is no conflict.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gentool"):
        run_train(compose_train(*RESUME, f"resume={tmp_path / 'own'}", "trainer.max_steps=6"),
                  tmp_path / "own")
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_run_started_from_resume_continues_with_the_same_command_without_a_warning(
        compose_train, tmp_path, caplog):
    run_train(compose_train(*RESUME), tmp_path / "other")
    # A requeued job repeats the command that started the run, resume= included.
    start = [*RESUME, f"resume={tmp_path / 'other'}"]
    run_train(compose_train(*start, "trainer.max_steps=9"), tmp_path / "own")
    with caplog.at_level(logging.INFO, logger="gentool"):
        run_train(compose_train(*start, "trainer.max_steps=10"), tmp_path / "own")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (f"continuing {tmp_path / 'own'} at step 9; resume={tmp_path / 'other'} started this "
            "run and is not read again") in caplog.text
    # Another resume= than the one the run started with is passed over with a warning.
    caplog.clear()
    run_train(compose_train(*RESUME, "trainer.max_steps=2"), tmp_path / "third")
    with caplog.at_level(logging.INFO, logger="gentool"):
        run_train(compose_train(*RESUME, f"resume={tmp_path / 'third'}", "trainer.max_steps=11"),
                  tmp_path / "own")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"resume={tmp_path / 'third'} is not used: {tmp_path / 'own'} already holds its own "
        "checkpoints/last.pt (step 10), which this run continues; to start from "
        f"{tmp_path / 'third'}, choose a new hydra.run.dir="]


def test_resume_refuses_a_checkpoint_of_another_model(compose_train, tmp_path):
    run_train(compose_train(*TINY, "model=ae"), tmp_path / "ae")
    with pytest.raises(GentoolError, match="does not fit this model"):
        run_train(compose_train(*TINY, "model=vae", f"resume={tmp_path}/ae/checkpoints/last.pt"),
                  tmp_path / "vae")


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(compose_train, tmp_path,
                                                                   monkeypatch):
    healthy = VAE.train_step

    def poisoned(self, batch, ctx):
        metrics = healthy(self, batch, ctx)
        if ctx.step >= 4:  # steps are 0-based: the 5th step's loss is NaN
            metrics["loss"] = torch.tensor(float("nan"))
        return metrics

    monkeypatch.setattr(VAE, "train_step", poisoned)
    cfg = compose_train(*TINY, "trainer.max_steps=10", "trainer.checkpoint_every=3",
                        "trainer.log_every=1")
    with pytest.raises(TrainingDiverged, match=r"diverged by step 5 \(loss=nan\).*is kept"):
        run_train(cfg, tmp_path)
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == 3
    assert not (tmp_path / "metrics.json").exists()


def test_linear_autoencoder_matches_pca_reconstruction_error(compose_train, tmp_path):
    """Baldi & Hornik: a linear AE trained on squared error reaches PCA's subspace."""
    from sklearn.decomposition import PCA

    from gentool.data import build_data, take
    from gentool.methods import build_method

    k = 8
    cfg = compose_train("device=cpu", "model=ae_linear", f"model.latent_dim={k}",
                        "trainer.max_steps=4000", "trainer.batch_size=256", "trainer.log_every=500",
                        "trainer.eval_every=4000", "trainer.checkpoint_every=4000",
                        "trainer.progress_bar=false", "optimizer.lr=0.01",
                        "trainer.schedule.name=cosine")
    run_train(cfg, tmp_path)
    data = build_data(cfg.dataset, cfg.data_dir, "cpu", 256, 0)
    x = take(data.train, data.train.num_examples)[0]
    method = build_method(cfg)
    method.load_state_dict(_weights(tmp_path / "checkpoints/last.pt"))
    with torch.no_grad():
        ae_mse = ((method.reconstruct(x) - x) ** 2).mean().item()
    flat = x.flatten(1).numpy()
    pca = PCA(n_components=k).fit(flat)
    pca_mse = ((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).mean()
    print(f"linear AE {ae_mse:.6f} vs PCA {pca_mse:.6f}")
    assert ae_mse == pytest.approx(pca_mse, rel=0.02)


def test_rerunning_a_finished_run_keeps_its_evaluation_and_training_further_drops_it(
        compose_train, tmp_path):
    cfg = compose_train(*TINY, "model=vae")
    run_train(cfg, tmp_path)
    path = tmp_path / "metrics.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "eval/fd": 12.5}))      # as gentool eval merges it
    run_train(cfg, tmp_path)                                       # the same checkpoint
    assert json.loads(path.read_text())["eval/fd"] == 12.5
    run_train(compose_train(*TINY, "model=vae", "trainer.max_steps=8"), tmp_path)
    again = json.loads(path.read_text())
    assert again["step"] == 8 and "eval/fd" not in again            # described step 6


def test_rerunning_a_finished_run_trains_nothing_and_reports_the_same_metrics(compose_train,
                                                                              tmp_path, capsys):
    cfg = compose_train(*TINY, "model=vae")
    first = run_train(cfg, tmp_path)
    projector = {p: p.read_bytes() for p in (tmp_path / "00006" / "latent").iterdir()}
    capsys.readouterr()
    again = run_train(cfg, tmp_path)  # last.pt is at max_steps: only the final evaluation runs
    assert again == pytest.approx(first)
    assert load_checkpoint(tmp_path / "checkpoints/last.pt")["step"] == 6
    # The embedding of step 6 is already in the projector: not written again, no warning.
    assert "Embedding dir exists" not in capsys.readouterr().out
    assert {p: p.read_bytes() for p in (tmp_path / "00006" / "latent").iterdir()} == projector
