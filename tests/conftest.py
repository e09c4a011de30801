"""Shared fixtures: composing configs like the CLI does, tiny trainer settings, fixture data, the
installed `gentool` command (tier 3): started fresh (`gentool`) or forked from a process that has
imported its libraries (`forked`, `forked_gentool`); one cell of each study script
(`study_cell`); a SIGTERM sent during a training step (`sigterm_during_step`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from gentool.config import setup
from gentool.overrides import merged_overrides
from data_fixtures import write_cifar10, write_frey_mat, write_image_folder, write_mnist_idx
from forked_gentool import ForkedGentool
from study_helpers import SCRIPTS, STUDY_CELLS

# A few steps with every periodic action (log, eval + pictures, checkpoint) happening at least once.
TINY = ["device=cpu", "trainer.max_steps=6", "trainer.batch_size=16", "trainer.log_every=2",
        "trainer.eval_every=3", "trainer.checkpoint_every=3", "trainer.eval_examples=64",
        "trainer.image_examples=8", "trainer.scatter_examples=32", "trainer.progress_bar=false"]


# The command-line tests start a process per run: TINY with fewer steps.
CLI_TINY = merged_overrides(*TINY, "trainer.max_steps=4", "trainer.eval_every=2",
                            "trainer.checkpoint_every=2")


@pytest.fixture(scope="session", autouse=True)
def gentool_setup():
    """The resolvers and schemas gentool's configs name, as the command line registers them;
    one torch thread for the tests' process."""
    setup()
    # The tests' models are tiny: a second thread saves little, and on a machine whose cores are
    # busy with other work its OpenMP barriers spin, multiplying the CPU time of every test.
    torch.set_num_threads(1)


@pytest.fixture
def check_complete_calls(monkeypatch) -> list:
    """The configs gentool.config.check_complete is called with while a test runs, through
    whichever gentool module calls it (the name is patched in every one that imported it)."""
    import gentool.config

    original, calls = gentool.config.check_complete, []

    def counted(cfg):
        calls.append(cfg)
        return original(cfg)

    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "gentool" and \
                getattr(module, "check_complete", None) is original:
            monkeypatch.setattr(module, "check_complete", counted)
    return calls


def compose_config(name: str, overrides) -> "DictConfig":  # noqa: F821
    setup()
    with initialize_config_module("gentool.configs", version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.fixture
def compose_train():
    return lambda *overrides: compose_config("train", overrides)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """Tiny files in every real on-disk format: IDX (MNIST, Fashion-MNIST), CIFAR-10 pickles,
    Frey faces .mat and an image folder."""
    root = tmp_path_factory.mktemp("data")
    write_mnist_idx(root, n_train=64, n_test=32, gz=False, name="MNIST")
    write_mnist_idx(root, n_train=64, n_test=32, gz=True, name="FashionMNIST")
    write_cifar10(root, n_per_batch=16, n_test=32)
    write_frey_mat(root, n=80)
    write_image_folder(root, n=40)
    return root


# One data set of each kind: 8x8, 28x28 grey, 32x32 colour, 28x20 (odd sizes), streamed 64x64 colour.
DATA_KINDS = {
    "digits": ["dataset=digits"],
    "mnist": ["dataset=mnist", "dataset.source.download=false"],
    "cifar10": ["dataset=cifar10", "dataset.source.download=false"],
    "frey_faces": ["dataset=frey_faces"],
    "folder": ["dataset=folder", "dataset.source.path={root}/images"],
}


def data_overrides(kind: str, root: Path) -> list[str]:
    return [o.format(root=root) for o in DATA_KINDS[kind]] + [f"data_dir={root}"]


@pytest.fixture(params=sorted(STUDY_CELLS))
def study_cell(request, tmp_path, monkeypatch):
    """One 4-step cell of each study script that runs its cells through scripts/study_files.py
    (tests/study_helpers.py); a test of one script names it:
    `@pytest.mark.parametrize("study_cell", ["mode_collapse"], indirect=True)`."""
    # Importable by name: the study's worker processes (spawned) import run_cell from it.
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return STUDY_CELLS[request.param](tmp_path)


@dataclass
class SignalledSteps:
    started: list[int] = field(default_factory=list)     # the steps the loop started
    unhandled: list[int] = field(default_factory=list)   # SIGTERMs the loop did not note


@pytest.fixture
def sigterm_during_step(monkeypatch):
    """`with sigterm_during_step(step) as steps:` gentool's training loop, in this process, sends
    the process SIGTERM as it starts step `step` (where it sets the step's learning rates:
    gentool.engine.loop.apply_schedule) and records the steps it starts in `steps.started`. The
    block's own SIGTERM handler records in `steps.unhandled` any signal that reaches it, which the
    loop's handler did not note; the previous handler and the loop are restored on leaving it. A
    run that goes on for 50 steps after the signal fails rather than train on."""
    from gentool.engine import loop

    apply_schedule = loop.apply_schedule

    @contextlib.contextmanager
    def signalled(step: int):
        steps = SignalledSteps()

        def schedule_then_signal(optimizers, schedule, current, max_steps):
            steps.started.append(current)
            assert current < step + 50, "the run went on after the signal"
            if current == step:
                os.kill(os.getpid(), signal.SIGTERM)
            return apply_schedule(optimizers, schedule, current, max_steps)

        monkeypatch.setattr(loop, "apply_schedule", schedule_then_signal)
        previous = signal.signal(signal.SIGTERM,
                                 lambda signum, frame: steps.unhandled.append(signum))
        try:
            yield steps
        finally:
            signal.signal(signal.SIGTERM, previous)
            monkeypatch.setattr(loop, "apply_schedule", apply_schedule)

    return signalled


# -- tier 3: the installed command ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> dict:
    """Build the wheel, install it (without dependencies: they are this venv's) into a folder of
    its own, and return the environment and command that use it."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(root / "dist"), str(REPO)],
                   check=True, capture_output=True)
    wheel = next((root / "dist").glob("gentool-*.whl"))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    # One thread per command: the tiny runs gain nothing from more, the tests' processes share
    # the machine's cores, and runs of the command compare bit for bit across processes.
    env = {**os.environ, "PYTHONPATH": str(site), "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    env.pop("GENTOOL_DATA_DIR", None)
    return {"env": env, "gentool": str(site / "bin" / "gentool"), "site": site}


@pytest.fixture
def gentool(installed, tmp_path):
    """The installed command in a fresh process, as a user starts it (the console script)."""
    def run(*args, cwd: Path = tmp_path):
        return subprocess.run([installed["gentool"], *args], cwd=cwd, env=installed["env"],
                              capture_output=True, text=True, timeout=300)
    return run


@pytest.fixture(scope="session")
def forked(installed, tmp_path_factory):
    """The installed command in processes forked from one that has imported its third-party
    libraries (tests/forked_gentool.py): a process of its own per command, without the seconds
    of imports each fresh one costs. `forked.run(args, cwd, env=None)`."""
    server = ForkedGentool(installed["gentool"], installed["env"],
                           tmp_path_factory.mktemp("forked"))
    yield server
    server.close()


@pytest.fixture
def forked_gentool(forked, tmp_path):
    """What the `gentool` fixture runs, forked."""
    def run(*args, cwd: Path = tmp_path):
        return forked.run(args, cwd)
    return run


def assert_user_error(result, *fragments):
    """Non-zero exit, no traceback, the message on stderr naming the problem."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
