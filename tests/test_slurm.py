"""Sweeps through hydra/launcher=slurm on a real one-node SLURM cluster (scripts/slurm-local.sh),
and a preempted job that is requeued and resumes to the end; and, without a cluster, the job
script the launcher hands to a stand-in sbatch."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from gentool.overrides import merged_overrides


# Slow: starting the cluster and its jobs takes minutes. The default run covers the pieces: the
# SLURM launcher's options composing and checked (test_target_safety.py) and reaching the job
# script (below), sweeps through a launcher of separate processes (test_cli.py), the USR2
# hand-over to submitit's requeue handler (test_distributed.py), a stopped run resuming in its
# own directory (test_run_directory.py, test_engine.py) and two data-parallel processes against
# one (test_distributed.py, torchrun).

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "slurm-local.sh"
GENTOOL = [sys.executable, "-m", "gentool.cli"]
# Small jobs: one CPU and 2 GB each, so the 2-core test machine runs two at a time.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]
TINY = ["trainer.batch_size=16", "trainer.log_every=5", "trainer.eval_every=10",
        "trainer.checkpoint_every=10", "trainer.progress_bar=false", "device=cpu"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "GENTOOL_SLURM_DIR": str(folder)}
    started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True,
                             text=True, timeout=900)
    if started.returncode == 3:
        pytest.skip(f"SLURM cannot be installed here: {started.stderr.strip()}")
    assert started.returncode == 0, started.stderr
    yield {**env, "SLURM_CONF": str(folder / "slurm.conf"), "OMP_NUM_THREADS": "1"}
    subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


# Stand-ins for SLURM's commands: submitit looks for srun, and sbatch keeps the job script it is
# given in $GENTOOL_SBATCH_COPY, then refuses the job, so the sweep ends there.
STAND_INS = {"srun": "#!/bin/sh\nexit 1\n",
             "sbatch": '#!/bin/sh\ncp "$1" "$GENTOOL_SBATCH_COPY"\necho "stand-in" >&2\nexit 1\n'}


@pytest.mark.parametrize("options", [
    # the form README.md and configs/hydra/launcher/slurm.yaml document
    ["hydra.launcher.additional_parameters={qos: high, account: mylab}"],
    ["hydra.launcher.additional_parameters.qos=high", "hydra.launcher.additional_parameters."
                                                      "account=mylab"],
])
def test_additional_sbatch_options_reach_the_job_script(tmp_path, options):
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in STAND_INS.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    script = tmp_path / "job.sh"
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
           "GENTOOL_SBATCH_COPY": str(script), "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([*GENTOOL, "train", "-m", "hydra/launcher=slurm", *options,
                             "trainer.max_steps=1"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert script.is_file(), result.stderr[-3000:]
    lines = script.read_text().splitlines()
    assert "#SBATCH --qos=high" in lines and "#SBATCH --account=mylab" in lines


def squeue(env, *args):
    return subprocess.run(["squeue", "-h", *args], env=env, capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.slurm
@pytest.mark.slow
def test_a_2x2_sweep_runs_as_four_slurm_jobs_and_tabulates(cluster, tmp_path):
    result = subprocess.run([*GENTOOL, "train", "-m", *SLURM, "model=vae,ae", "seed=0,1",
                             "trainer.max_steps=20", *TINY], cwd=tmp_path, env=cluster,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(tmp_path.glob("multirun/train/*/*/*/checkpoints/last.pt"))
    assert len(checkpoints) == 4
    assert all(torch.load(c, weights_only=True)["step"] == 20 for c in checkpoints)
    assert len(list(tmp_path.glob("multirun/train/*/*/.submitit/*"))) >= 4   # SLURM's job files
    table = subprocess.run([*GENTOOL, "report", str(tmp_path / "multirun"), "--metrics",
                            "test/loss"], env=cluster, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "| model | n | test/loss |"
    assert lines[2].startswith("| ae | 2 |") and lines[3].startswith("| vae | 2 |")


@pytest.mark.slurm
@pytest.mark.slow
def test_a_preempted_job_is_requeued_and_resumes_to_the_end(cluster, tmp_path):
    steps = 1500
    launcher = subprocess.Popen(
        [*GENTOOL, "train", "-m",
         *merged_overrides(*SLURM, "hydra.launcher.name=preempt_me", "model=ae",
                           f"trainer.max_steps={steps}", *TINY, "trainer.checkpoint_every=100",
                           f"trainer.eval_every={steps}", "trainer.log_every=100")],
        cwd=tmp_path, env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob("multirun/train/*/*/0/checkpoints/last.pt")):
            assert time.monotonic() < deadline and launcher.poll() is None, "no checkpoint"
            time.sleep(0.5)
        job = squeue(cluster, "-n", "preempt_me", "-o", "%i")[0]
        # What SLURM sends before a preemption or time limit (signal_delay_s ahead of it).
        subprocess.run(["scancel", "--signal=USR2", job], env=cluster, check=True)
        while squeue(cluster, "-j", job, "-o", "%T") != ["PENDING"]:
            assert time.monotonic() < deadline, "the job was not requeued"
            time.sleep(0.5)
        # SLURM holds a requeued job for two minutes; let it start again now.
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=cluster,
                       check=True)
        output, _ = launcher.communicate(timeout=600)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, output[-3000:]
    run = next(tmp_path.glob("multirun/train/*/*/0"))
    log = (run / "train.log").read_text()
    assert "Caught signal SIGUSR2" in output + log
    resumed_at = int(log.split("Resumed from")[1].split("at step")[1].split()[0])
    assert 0 < resumed_at < steps          # the checkpoint written on the signal
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["step"] == steps
    # Periodic checkpoints before and after the requeue are all there (keep_checkpoints=3).
    kept = sorted(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert kept == [steps - 200, steps - 100, steps]
    assert json.loads((run / "metrics.json").read_text())["step"] == steps


@pytest.mark.slurm
@pytest.mark.slow
def test_data_parallel_over_two_slurm_tasks_equals_one_process(cluster, tmp_path):
    run = ["model=ae", "trainer.max_steps=20", "trainer.batch_size=32", *TINY[1:]]
    result = subprocess.run([*GENTOOL, "train", "-m", *SLURM, "hydra.launcher.tasks_per_node=2",
                             *run], cwd=tmp_path, env=cluster, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    job = next(tmp_path.glob("multirun/train/*/*/0"))
    assert "Data-parallel over 2 processes" in (job / "train.log").read_text()
    single = subprocess.run([*GENTOOL, "train", *run, "hydra.run.dir=single"], cwd=tmp_path,
                            env=cluster, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    a = torch.load(job / "checkpoints" / "last.pt", weights_only=True)["modules"]["method"]
    b = torch.load(tmp_path / "single" / "checkpoints" / "last.pt",
                   weights_only=True)["modules"]["method"]
    assert all(torch.allclose(a[name], b[name], atol=1e-5) for name in b)
