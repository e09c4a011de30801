"""Engine pieces: device choice, precision, metric windows, graceful stop on a signal."""

import signal

import pytest
import torch

from conftest import TINY
from gentool.engine.checkpoint import load_checkpoint
from gentool.engine.device import autocast_for, resolve_device
from gentool.engine.metering import MetricWindow
from gentool.engine.stop import RunStopped
from gentool.errors import GentoolError
from gentool.methods.vae import VAE
from gentool.train import run_train


def test_auto_device_falls_back_to_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_auto_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name,message", [("gpu", "device=gpu is not understood"),
                                          ("cuda:x", "not understood")])
def test_bad_device_names_are_clear_errors(name, message):
    with pytest.raises(GentoolError, match=message):
        resolve_device(name)


def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(GentoolError, match="no usable CUDA GPU; use device=auto or device=cpu"):
        resolve_device("cuda")


def test_precision_choices():
    assert autocast_for("32", torch.device("cpu"))().__class__.__name__ == "nullcontext"
    with pytest.raises(GentoolError, match="precision=16 needs a CUDA device"):
        autocast_for("16", torch.device("cpu"))
    with pytest.raises(GentoolError, match="precision is '64' but must be one of 32, bf16, 16; "
                                           "e.g. trainer.precision=32."):
        autocast_for("64", torch.device("cpu"))


def test_bf16_autocast_trains_on_cpu(compose_train, tmp_path, monkeypatch):
    # The decoder's output in every train step, recorded by a forward hook held for the step.
    decoded = []
    train_step = VAE.train_step

    def recording_train_step(self, batch, ctx):
        handle = self.decoder.register_forward_hook(
            lambda module, inputs, output: decoded.append(output.dtype))
        try:
            return train_step(self, batch, ctx)
        finally:
            handle.remove()

    monkeypatch.setattr(VAE, "train_step", recording_train_step)
    loss = run_train(compose_train(*TINY, "model=conv_vae", "trainer.precision=bf16"), tmp_path)
    assert torch.isfinite(torch.tensor(loss))
    # 6 steps, each decoding once, in bfloat16 under the step's autocast
    assert decoded == [torch.bfloat16] * 6
    # The weights stay float32 and every one of them moved between steps 3 and 6.
    early = load_checkpoint(tmp_path / "checkpoints/step_3.pt")["modules"]["method"]
    late = load_checkpoint(tmp_path / "checkpoints/last.pt")["modules"]["method"]
    weights = [k for k in late if k.startswith(("encoder.", "decoder."))
               and late[k].is_floating_point() and "running_" not in k]
    assert weights and all(late[k].dtype == torch.float32 for k in weights)
    assert all(torch.isfinite(late[k]).all() for k in weights)
    assert [k for k in weights if torch.equal(early[k], late[k])] == []


def test_metric_window_averages_over_steps_and_counts_images():
    window = MetricWindow()
    window.add({"loss": torch.tensor(1.0)}, images=10)
    window.add({"loss": torch.tensor(3.0)}, images=10)
    assert window.first_non_finite() is None
    flushed = window.flush()
    assert flushed["loss"] == 2.0 and flushed["images_per_second"] > 0
    window.add({"loss": torch.tensor(float("inf"))}, images=1)
    assert window.first_non_finite() == "loss=inf"


def test_metric_window_averages_each_metric_over_the_steps_that_reported_it():
    # Gradient norms are measured on logging steps only: 1 of 3 steps here.
    window = MetricWindow()
    window.add({"loss": torch.tensor(1.0)}, images=1)
    window.add({"loss": torch.tensor(2.0)}, images=1)
    window.add({"loss": torch.tensor(3.0), "grad_norm/model": torch.tensor(6.0)}, images=1)
    flushed = window.flush()
    assert flushed["loss"] == 2.0 and flushed["grad_norm/model"] == 6.0


def test_sigterm_writes_a_checkpoint_and_the_same_command_resumes(compose_train, tmp_path,
                                                                  sigterm_during_step):
    """A signal (SLURM preemption, Ctrl-C) ends the run after a checkpoint of the current step;
    running the same command in the same directory finishes it. Here the run signals itself
    during its fifth step; tests/test_run_directory.py signals the installed command from outside
    and checks its exit status and message."""
    args = [*TINY, "trainer.max_steps=100000", "trainer.checkpoint_every=100000",
            "trainer.eval_every=100000"]
    with sigterm_during_step(4) as steps:
        with pytest.raises(RunStopped) as stopped:
            run_train(compose_train(*args), tmp_path / "run")
        assert steps.unhandled == []
        assert steps.started == [0, 1, 2, 3, 4]   # the current step, then no other
        assert stopped.value.exit_status == 128 + signal.SIGTERM
        assert str(stopped.value).startswith("stopped at step 5 by SIGTERM")
        assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["step"] == 5
        finish = [a if not a.startswith("trainer.max_steps") else "trainer.max_steps=8"
                  for a in args]
        run_train(compose_train(*finish), tmp_path / "run")   # a resumed run has no step 4
        assert steps.started == [0, 1, 2, 3, 4, 5, 6, 7]
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["step"] == 8
