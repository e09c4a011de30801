"""A run directory has one writer, a refused start leaves nothing behind, a stop signal says how to
resume, and paths take `~`: the installed command (tests/test_cli.py's wheel) end to end, plus the
lock, the start/undo bookkeeping and the second-signal exit in process. The runs that are signalled
or paused start as a user starts them; the other commands are forked (conftest.forked)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from conftest import compose_config
from data_fixtures import write_image_folder
from gentool.engine.checkpoint import load_checkpoint
from gentool.engine.run_directory import RunDirectory
from gentool.engine.run_lock import LOCK_FILE, RunLock
from gentool.engine.stop import SAME_REQUEST_S, StopRequested
from gentool.errors import GentoolError
from gentool.hydra_run import expand_home
from gentool.overrides import merged_overrides
from gentool.sample import run_sample
from gentool.train import run_train
from conftest import CLI_TINY as TINY, assert_user_error

# Long enough to be caught running; the tests stop or pause it, so its length costs nothing.
LONG = ["device=cpu", "trainer.batch_size=8", "trainer.log_every=100", "trainer.eval_every=100000",
        "trainer.checkpoint_every=100000", "trainer.image_examples=8",
        "trainer.scatter_examples=64", "trainer.progress_bar=false"]


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`, with a hash of each file's bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder" for p in sorted(folder.rglob("*"))}


def start(installed, cwd: Path, *args, **env) -> subprocess.Popen:
    return subprocess.Popen([installed["gentool"], *args], cwd=cwd,
                            env={**installed["env"], **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def trained(forked, tmp_path_factory) -> Path:
    """A finished VAE run made by the installed command (tests copy it before changing it)."""
    root = tmp_path_factory.mktemp("trained")
    done = forked.run(["train", "model=vae", *TINY, "hydra.run.dir=run"], root)
    assert done.returncode == 0, done.stderr
    return root / "run"


def gentool_line(line: str) -> list[str]:
    """The arguments of a printed `gentool ...` shell command."""
    words = shlex.split(line)
    assert words[0] == "gentool"
    return words[1:]


# --- one writer -----------------------------------------------------------------------------

def test_a_second_process_in_a_running_directory_stops_at_once(installed, forked_gentool,
                                                               tmp_path):
    first = start(installed, tmp_path, "train", *LONG, "trainer.max_steps=400", "hydra.run.dir=run")
    wait_for(tmp_path / "run" / "train.log", first)     # the first run has started
    first.send_signal(signal.SIGSTOP)                   # paused, lock held: no race with its end
    try:
        second = forked_gentool("train", *LONG, "trainer.max_steps=10", "seed=7",
                                "hydra.run.dir=run")
    finally:
        first.send_signal(signal.SIGCONT)
    assert_user_error(second, "is in use by another gentool process")
    assert second.stderr.strip().count("\n") == 0 and str(tmp_path / "run") in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 400
    assert "seed=7" not in (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text()
    assert (tmp_path / "run" / "train.log").read_text().count("Device:") == 1


def test_the_lock_is_exclusive_and_other_ranks_are_not_refused(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(GentoolError, match=f"{tmp_path} is in use by another gentool"):
            RunLock(tmp_path).acquire()
        with RunDirectory(tmp_path).held(is_main=False):   # rank 1 of a data-parallel run
            pass
    with RunLock(tmp_path):   # released on exit, taken again
        pass
    assert (tmp_path / LOCK_FILE).read_bytes() == b""


def test_a_forked_worker_does_not_keep_the_lock(tmp_path):
    lock = RunLock(tmp_path).acquire()
    if not lock.supported:
        lock.release()
        pytest.skip("this file system cannot flock: RunLock runs without a lock here")
    ready, started = os.pipe()
    child = os.fork()
    if child == 0:           # a DataLoader worker, say: it outlives its parent's run a while
        os.write(started, b"1")
        time.sleep(3)
        os._exit(0)
    try:
        os.read(ready, 1)    # the child runs (its fork hooks have run)
        # The lock is held: a second open of the lock file (another process, or this one) is
        # refused while it is.
        with pytest.raises(GentoolError, match="in use by another gentool process"):
            RunLock(tmp_path).acquire()
        lock.release()
        assert os.waitpid(child, os.WNOHANG) == (0, 0)     # the child is still running
        again = RunLock(tmp_path)
        try:
            again.acquire()
        except GentoolError as error:
            pytest.fail(f"the forked child kept the parent's lock: {error}")
        assert again.supported and again._fd is not None
        again.release()
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        os.close(ready)
        os.close(started)


# --- refused starts leave nothing behind ----------------------------------------------------

def test_a_refused_resume_leaves_the_directory_byte_identical(trained, forked_gentool, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / ".last.pt.x1y2z3.tmp").write_bytes(b"left by a kill")
    before = tree(tmp_path / "run")
    refused = forked_gentool("train", "model=ae", *TINY, "hydra.run.dir=run")
    assert_user_error(refused, "does not fit this model", "model=vae", "model=ae")
    assert tree(tmp_path / "run") == before   # .hydra/, train.log and the lock file included
    assert "model=ae" not in (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text()


def test_a_refused_start_leaves_no_new_directory(forked_gentool, tmp_path):
    assert_user_error(forked_gentool("train", *TINY, "model=vae", "loss=mse"),   # runs/train/...
                      "loss=mse does not fit model=vae")
    assert_user_error(forked_gentool("train", *TINY, "resume=nowhere/last.pt",
                                     "hydra.run.dir=new/deep"),
                      "resume=nowhere/last.pt: there is no checkpoint")
    assert list(tmp_path.iterdir()) == []


def test_a_refused_start_in_an_existing_folder_removes_only_its_lock_file(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(GentoolError, match="resume=nowhere.pt"):
        run_train(compose_config("train", [*TINY, "resume=nowhere.pt"]), tmp_path / "kept")
    with pytest.raises(KeyboardInterrupt):   # Ctrl-C before the start is accepted: the same
        with RunDirectory(tmp_path / "new" / "run").held():
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]


def test_resume_takes_a_checkpoint_or_a_run_directory(trained, tmp_path):
    for source in (trained, trained / "checkpoints" / "step_2.pt"):
        out = tmp_path / source.name
        run_train(compose_config("train", [*TINY, "model=vae", "trainer.max_steps=6",
                                           f"resume={source}"]), out)
        assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 6


# --- stop signals ---------------------------------------------------------------------------

def test_sigterm_prints_the_command_that_resumes_and_that_command_finishes(installed, forked,
                                                                          tmp_path):
    run = start(installed, tmp_path, "train",
                *merged_overrides(*LONG, "trainer.max_steps=600", "trainer.checkpoint_every=50",
                                  "hydra.run.dir=run"))
    # The loop (and its stop handler) is running once it has written its first checkpoint.
    wait_for(tmp_path / "run" / "checkpoints" / "last.pt", run)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    leftover = tmp_path / "run" / "checkpoints" / ".last.pt.k2j3h4.tmp"   # a kill in a write
    leftover.write_bytes(b"half a checkpoint")
    assert run.returncode == 128 + signal.SIGTERM == 143
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("gentool: stopped")]
    assert len(lines) == 1, stderr
    line = lines[0]
    step = torch.load(tmp_path / "run/checkpoints/last.pt", weights_only=True)["step"]
    assert f"stopped at step {step} by SIGTERM" in line and 0 < step < 600
    assert line.rstrip().endswith(f"hydra.run.dir={tmp_path / 'run'}")
    assert line in (tmp_path / "run" / "train.log").read_text()
    command = line.split("resume with: ", 1)[1]
    resumed = forked.run(gentool_line(command), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {step}" in (tmp_path / "run" / "train.log").read_text()   # "Resumed from"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 600
    assert not leftover.exists()                            # removed at the start
    assert list(tmp_path.iterdir()) == [tmp_path / "run"]   # no other run directory


def test_a_second_signal_while_stopping_exits_at_once_unless_it_repeats_the_first(
        capsys, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("gentool.engine.stop.monotonic", lambda: now[0])
    with StopRequested() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == signal.SIGINT        # noted: the loop checkpoints, then stops
        # Within the window: the same request, as a process group or a scheduler delivers it.
        now[0] += SAME_REQUEST_S - 0.01
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal == signal.SIGINT and capsys.readouterr().err == ""
        now[0] += 0.02
        with pytest.raises(SystemExit) as exited:
            os.kill(os.getpid(), signal.SIGINT)
    assert exited.value.code == 130
    assert "SIGINT again: stopped at once" in capsys.readouterr().err


# --- sample and eval ------------------------------------------------------------------------

def test_sample_never_writes_over_a_checkpoint(trained, tmp_path):
    checkpoints = trained / "checkpoints"
    before = tree(checkpoints)
    for out, message in ((checkpoints / "last.pt", "is the checkpoint that sample reads"),
                         (checkpoints / "step_2.pt", "names a .pt file"),
                         (tmp_path / "new.pt", "names a .pt file")):
        for fmt in ("grid", "npy"):
            with pytest.raises(GentoolError, match=message):
                run_sample(compose_config("sample", [f"checkpoint={checkpoints}/last.pt",
                                                     f"out={out}", f"format={fmt}", "n=4",
                                                     "device=cpu"]))
    assert tree(checkpoints) == before and not (tmp_path / "new.pt").exists()


def test_sample_and_eval_logs_go_beside_the_output_and_into_the_run(trained, forked_gentool,
                                                                   tmp_path):
    run = shutil.copytree(trained, tmp_path / "run")
    (tmp_path / "samples.png").write_bytes(b"an earlier output")   # replaced, as before
    sampled = forked_gentool("sample", "checkpoint=run/checkpoints/last.pt", "n=4",
                             "out=samples.png", "device=cpu")
    assert sampled.returncode == 0, sampled.stderr
    assert (tmp_path / "samples.png").read_bytes()[:4] == b"\x89PNG"
    assert "Wrote 4 images" in (tmp_path / "samples.log").read_text()
    evaluated = forked_gentool("eval", "checkpoint=run/checkpoints/last.pt",
                               "metrics=[reconstruction]", "device=cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "Metrics written to" in (run / "eval" / "eval.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "samples.log", "samples.png"]


# --- ~ in paths -----------------------------------------------------------------------------

def test_paths_take_the_home_folder(installed, forked, tmp_path):
    home = tmp_path / "home"
    write_image_folder(home, n=40)
    env = {**installed["env"], "HOME": str(home)}

    def run(*args):
        return forked.run(args, tmp_path, env=env)

    # key=~/path, unquoted: the command line puts the home folder in, as a shell would.
    shown = run("train", "dataset=folder", "dataset.source.path=~/images", "--cfg", "job")
    assert shown.returncode == 0, shown.stderr
    assert f"path: {home}/images" in shown.stdout
    # Quoted for Hydra, `~` reaches the code, which expands it.
    small = ["dataset=folder", "dataset.shape=[1,8,8]", "dataset.source.test_fraction=0.25",
             *merged_overrides(*TINY, "trainer.batch_size=8")]
    trained = run("train", *small, "dataset.source.path='~/images'", "hydra.run.dir=~/run")
    assert trained.returncode == 0, trained.stderr
    assert (home / "run" / "checkpoints" / "last.pt").is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_readme_says_which_tildes_bash_expands_itself():
    """Bash expands `~` after the `=` of a plain-named key, not after a dotted key or a +; the
    README's paragraph on `~` says so."""
    typed = 'printf "%s\\n" checkpoint=~/x hydra.run.dir=~/x +data_dir=~/x'
    shown = subprocess.run(["bash", "-c", typed], env={"HOME": "/home/me", "PATH": os.environ["PATH"]},
                           capture_output=True, text=True, check=True).stdout.split()
    assert shown == ["checkpoint=/home/me/x", "hydra.run.dir=~/x", "+data_dir=~/x"]
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "expands `~` after the `=` of a word whose key is a plain name" in readme
    assert "only at the start of a word" not in readme
    # and so does the command line's own account of why it expands `~`
    assert "only at the start of a word" not in expand_home.__doc__
    assert "dotted key" in expand_home.__doc__


def test_home_expansion_of_the_command_line(monkeypatch):
    monkeypatch.setenv("HOME", "/home/me")
    assert expand_home("checkpoint=~/runs/last.pt") == "checkpoint=/home/me/runs/last.pt"
    assert expand_home("hydra.run.dir=~") == "hydra.run.dir=/home/me"
    assert expand_home("+dataset.source.path=~/x") == "+dataset.source.path=/home/me/x"
    monkeypatch.setenv("HOME", "/home/m e")
    assert expand_home("out=~/s.png") == "out='/home/m e/s.png'"
    for untouched in ("~model", "model=vae", "data_dir='~/x'", "paths=[~/a,~/b]", "x=a~b"):
        assert expand_home(untouched) == untouched
