"""Data-parallel training: two gloo processes on the CPU against one process with the same global
batch, sharding, signals, and resume after kill -9."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gentool.data.batching import shard_of
from gentool.engine import distributed
from gentool.engine.loop import StopRequested
from gentool.errors import GentoolError
from gentool.overrides import merged_overrides

# An autoencoder: no sampling noise, so one process and two must agree to float precision.
RUN = ["train", "model=ae", "dataset=digits", "trainer.max_steps=20", "trainer.batch_size=32",
       "trainer.log_every=5", "trainer.eval_every=10", "trainer.checkpoint_every=10",
       "trainer.progress_bar=false", "device=cpu"]


def environment(base=os.environ):
    """`base` without a run tag or SLURM task of its own, one thread per process."""
    env = {k: v for k, v in base.items() if not k.startswith(("GENTOOL_RUN", "SLURM_"))}
    return {**env, "OMP_NUM_THREADS": "1"}


def final_weights(run_dir):
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 20
    return state["modules"]["method"]


def test_two_processes_equal_one_with_the_same_global_batch(installed, forked, tmp_path):
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node=2"]
    two = subprocess.run([*torchrun, "-m", "gentool.cli", *RUN], cwd=tmp_path,
                         env=environment(), capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    runs = list((tmp_path / "runs" / "train").glob("*/*"))
    assert len(runs) == 1                      # both ranks wrote into one run directory
    output = two.stdout + two.stderr
    assert "Data-parallel over 2 processes: 16 examples each" in output
    assert output.count("Final test metrics") == 1       # only rank 0 logs
    # One process: the installed command, forked from the tests' server (conftest.forked).
    one = forked.run([*RUN, "hydra.run.dir=single"], tmp_path, env=environment(installed["env"]))
    assert one.returncode == 0, one.stderr[-3000:]
    parallel, single = final_weights(runs[0]), final_weights(tmp_path / "single")
    for name, tensor in single.items():
        # Adam divides by sqrt(v): float round-off in near-zero gradients shows at ~1e-6.
        assert torch.allclose(parallel[name], tensor, atol=1e-5), name


def test_each_process_takes_its_contiguous_slice_of_the_global_batch():
    batch = torch.arange(8)
    assert shard_of(batch, (0, 1)).tolist() == list(range(8))
    assert shard_of(batch, (0, 2)).tolist() == [0, 1, 2, 3]
    assert shard_of(batch, (1, 2)).tolist() == [4, 5, 6, 7]


def test_global_batch_must_divide_among_the_processes():
    assert distributed.per_rank_batch_size(32, distributed.Rank(0, 4)) == 8
    with pytest.raises(GentoolError, match="must divide evenly among the 3 processes"):
        distributed.per_rank_batch_size(32, distributed.Rank(0, 3))


def test_rank_comes_from_torchrun_or_slurm_variables(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(key, raising=False)
    assert distributed.rank_from_env() == distributed.Rank(0, 1, 0)
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    assert distributed.rank_from_env() == distributed.Rank(3, 4, 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.rank_from_env() == distributed.Rank(1, 2, 1)


def test_usr2_is_handed_to_the_handler_installed_before_after_the_checkpoint():
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with StopRequested() as stop:
            os.kill(os.getpid(), signal.SIGUSR2)
            assert stop.signal == signal.SIGUSR2 and calls == []   # only noted, at first
            stop.hand_over()                                       # after the checkpoint
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_kill_9_at_any_moment_then_the_same_command_finishes_with_the_same_weights(
        installed, forked, tmp_path):
    """The run that is killed is started as a user starts it; the reference run and the resumed
    one are forked (conftest.forked), all with the installed command and one thread."""
    env = environment(installed["env"])
    run = merged_overrides(*RUN, "trainer.max_steps=60", "trainer.checkpoint_every=7",
                           "trainer.eval_every=60", "trainer.log_every=60")
    reference = forked.run([*run, "hydra.run.dir=reference"], tmp_path, env=env)
    assert reference.returncode == 0, reference.stderr[-3000:]
    last = tmp_path / "killed" / "checkpoints" / "last.pt"
    job = subprocess.Popen([installed["gentool"], *run, "hydra.run.dir=killed"], cwd=tmp_path,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)            # somewhere inside a later step, or a later checkpoint write
    job.kill()                 # SIGKILL: no handler runs
    job.wait()
    survived = torch.load(last, weights_only=True)     # never a torn checkpoint
    assert survived["step"] % 7 == 0 or survived["step"] == 60
    resumed = forked.run([*run, "hydra.run.dir=killed"], tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = torch.load(tmp_path / "reference" / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert b["step"] == 60
    for name, tensor in a["modules"]["method"].items():
        assert torch.equal(b["modules"]["method"][name], tensor), name
